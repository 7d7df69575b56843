//! Reading values off a Prometheus text page, and the series a PromQL
//! expression asks for.

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

/// A metric an expression names, with the labels it requires exactly
/// (`key="value"`; regex and negative matchers are left out: they do not
/// name one series).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    pub name: String,
    pub equal: Vec<(String, String)>,
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self
            .equal
            .iter()
            .map(|(key, value)| format!("{key}={value:?}"))
            .collect();
        write!(f, "{}{{{}}}", self.name, labels.join(","))
    }
}

/// Every metric whose name starts with one of `prefixes` named in `text`
/// (PromQL, or any text holding it), with its equality matchers.
pub fn selectors(text: &str, prefixes: &[&str]) -> Vec<Selector> {
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = prefixes.iter().filter_map(|p| rest.find(p)).min() {
        let before = rest[..start].chars().next_back();
        let tail = &rest[start..];
        let end = tail.find(|c| !is_name(c)).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        if before.is_some_and(is_name) {
            continue; // inside a longer word
        }
        let mut equal = Vec::new();
        if let Some(inner) = rest.strip_prefix('{')
            && let Some(close) = inner.find('}')
        {
            for matcher in inner[..close].split(',') {
                if let Some((key, value)) = matcher.split_once('=')
                    && !key.ends_with('!')
                    && !value.starts_with('~')
                {
                    let value = value.trim().trim_matches('"');
                    equal.push((key.trim().to_owned(), value.to_owned()));
                }
            }
            rest = &inner[close..];
        }
        equal.sort();
        found.push(Selector {
            name: name.to_owned(),
            equal,
        });
    }
    found.sort();
    found.dedup();
    found
}

/// Whether `page` holds a sample of `selector`'s metric carrying all its
/// labels.
pub fn has_series(page: &str, selector: &Selector) -> bool {
    let labels: Vec<String> = selector
        .equal
        .iter()
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .any(|line| {
            let series = line.rsplit_once(' ').map_or(line, |(series, _)| series);
            let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
            metric == selector.name && labels.iter().all(|l| label_text.contains(l.as_str()))
        })
}

/// The metrics of `page` that have a `# TYPE` line but no `# HELP` line.
pub fn undescribed(page: &str) -> Vec<String> {
    let named = |tag: &str| -> Vec<String> {
        page.lines()
            .filter_map(|line| line.strip_prefix(tag))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    let helped = named("# HELP ");
    named("# TYPE ")
        .into_iter()
        .filter(|name| !helped.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_keep_names_and_exact_matchers_only() {
        let expr = r#"sum(rate(ledgerhook_a_total{kind="x", route!="y",q=~".+"}[5m])) / up{job="j"}
            + ledgerhook_b_bucket and not my_ledgerhook_c"#;
        let found = selectors(expr, &["ledgerhook_"]);
        assert_eq!(
            found,
            [
                Selector {
                    name: "ledgerhook_a_total".into(),
                    equal: vec![("kind".into(), "x".into())],
                },
                Selector {
                    name: "ledgerhook_b_bucket".into(),
                    equal: vec![],
                },
            ]
        );
    }

    #[test]
    fn series_and_help_lines_are_found() {
        let page = "# HELP a_total A.\n# TYPE a_total counter\na_total{kind=\"x\",p=\"q\"} 0\n# TYPE b gauge\nb 1\n";
        let with = |name: &str, equal: &[(&str, &str)]| Selector {
            name: name.into(),
            equal: equal
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        };
        assert!(has_series(page, &with("a_total", &[("kind", "x")])));
        assert!(!has_series(page, &with("a_total", &[("kind", "y")])));
        assert!(has_series(page, &with("b", &[])));
        assert!(!has_series(page, &with("c", &[])));
        assert_eq!(undescribed(page), ["b"]);
    }

    #[test]
    fn sums_matching_series_only() {
        let page = "# TYPE x counter\nx{outcome=\"a\"} 2\nx{outcome=\"b\"} 3\nxy 7\nx 1\n";
        assert_eq!(sum(page, "x", &[]), 6.0);
        assert_eq!(sum(page, "x", &["outcome=\"a\""]), 2.0);
        assert_eq!(sum(page, "missing", &[]), 0.0);
    }
}
