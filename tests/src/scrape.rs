//! Reading values off a Prometheus text page.

/// Sum of every sample of `name` whose labels contain all of `labels`
/// (each written `key="value"`). Zero when there is none.
pub fn sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|l| label_text.contains(l)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_series_only() {
        let page = "# TYPE x counter\nx{outcome=\"a\"} 2\nx{outcome=\"b\"} 3\nxy 7\nx 1\n";
        assert_eq!(sum(page, "x", &[]), 6.0);
        assert_eq!(sum(page, "x", &["outcome=\"a\""]), 2.0);
        assert_eq!(sum(page, "missing", &[]), 0.0);
    }
}
