//! What counts as an acceptable JSON body: one definition for the ingester,
//! which refuses everything else at the edge, and the worker, which parses
//! what was accepted. Whatever the ingester answers 200 to, the worker can
//! read; a body it could not is never recorded.
//!
//! Numbers keep their exact text (serde_json's `arbitrary_precision`), so
//! `1e400` or a 5,000-digit integer is valid JSON here as everywhere, and an
//! amount never passes through a float.

use serde_json::Value;

/// Deepest nesting of arrays and objects accepted. Webhook bodies nest a
/// handful of levels; serde_json's own parser stops at 128, so anything this
/// check lets through, the parser reads.
pub const MAX_NESTING_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body nests arrays or objects deeper than {MAX_NESTING_DEPTH} levels")]
    TooDeep,
    #[error("the body is not JSON: {0}")]
    Syntax(String),
}

/// Parses a body under the rules above.
pub fn parse(body: &[u8]) -> Result<Value, JsonError> {
    // UTF-8 first: JSON is UTF-8 by definition (RFC 8259), and the depth
    // scan below relies on it.
    let text = std::str::from_utf8(body).map_err(|_| JsonError::NotUtf8)?;
    if nesting_depth(text.as_bytes()) > MAX_NESTING_DEPTH {
        return Err(JsonError::TooDeep);
    }
    serde_json::from_str(text).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// The deepest nesting of `[` and `{` outside strings, in one pass with no
/// allocation; an unbalanced body is left for the parser to refuse.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_beyond_it_is_refused() {
        assert!(parse(nested(MAX_NESTING_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            parse(nested(MAX_NESTING_DEPTH + 1).as_bytes()),
            Err(JsonError::TooDeep)
        );
        assert_eq!(parse(nested(10_000).as_bytes()), Err(JsonError::TooDeep));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let body = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn huge_numbers_keep_their_exact_text() {
        let digits = "7".repeat(5_000);
        let value =
            parse(format!(r#"{{"n":{digits},"e":1e400,"f":10.0000000000000001}}"#).as_bytes())
                .unwrap();
        assert_eq!(value["n"].to_string(), digits);
        // serde_json spells the exponent's sign; the value is the same.
        assert_eq!(value["e"].to_string(), "1e+400");
        assert_eq!(value["f"].to_string(), "10.0000000000000001");
    }

    #[test]
    fn invalid_utf8_even_inside_a_string_is_refused() {
        assert_eq!(parse(b"{\"a\":\"\xff\"}"), Err(JsonError::NotUtf8));
    }

    #[test]
    fn lone_surrogates_and_syntax_errors_say_what_is_wrong() {
        for body in [&br#"{"a":"\ud800"}"#[..], b"{", b"", b"nul"] {
            let error = parse(body).unwrap_err();
            assert!(matches!(error, JsonError::Syntax(_)), "{error:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn whatever_parses_here_is_within_the_depth_limit(body in "[\\[\\]{}\":,a0 ]{0,200}") {
            if let Ok(value) = parse(body.as_bytes()) {
                proptest::prop_assert!(serde_json::to_string(&value).is_ok());
            }
        }
    }
}
