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
    serde_json::from_str(checked_text(body)?).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// Whether [`parse`] would accept the body, without building its tree:
/// what the ingester asks of every delivery (it stores the bytes and needs
/// none of the values). The same parser reads every string (escapes and
/// surrogates checked, as when parsing) and every number; nothing is kept.
pub fn validate(body: &[u8]) -> Result<(), JsonError> {
    let mut reader = serde_json::Deserializer::from_str(checked_text(body)?);
    serde::Deserialize::deserialize(&mut reader)
        .and_then(|Checked| reader.end())
        .map_err(|e| JsonError::Syntax(e.to_string()))
}

/// The body as text, once it is UTF-8 (JSON is, by definition: RFC 8259)
/// and within the nesting limit (the scan relies on UTF-8).
fn checked_text(body: &[u8]) -> Result<&str, JsonError> {
    let text = std::str::from_utf8(body).map_err(|_| JsonError::NotUtf8)?;
    if nesting_depth(text.as_bytes()) > MAX_NESTING_DEPTH {
        return Err(JsonError::TooDeep);
    }
    Ok(text)
}

/// Any JSON value, read and dropped as it goes. Unlike serde's
/// `IgnoredAny`, strings are decoded (so a lone surrogate is refused, as
/// [`parse`] refuses it), and object keys too.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    /// Objects, and (with `arbitrary_precision`) numbers, which serde_json
    /// hands over as a one-entry map holding their text.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
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

    #[test]
    fn validate_refuses_what_parse_refuses() {
        let deep = nested(MAX_NESTING_DEPTH + 1);
        let cases: [&[u8]; 9] = [
            br#"{"a":"\ud800"}"#,
            br#"{"\ud800":1}"#,
            b"{\"a\":\"\xff\"}",
            b"{",
            b"",
            b"nul",
            b"[1,]",
            b"{} {}",
            deep.as_bytes(),
        ];
        for body in cases {
            assert!(validate(body).is_err(), "{body:?}");
            assert_eq!(
                validate(body).map_err(|e| std::mem::discriminant(&e)),
                parse(body)
                    .map(drop)
                    .map_err(|e| std::mem::discriminant(&e)),
                "{body:?}"
            );
        }
        let digits = "7".repeat(5_000);
        let fine =
            format!(r#"{{"n":{digits},"e":1e400,"s":"\ud83d\ude00","a":[true,null,-0.5,{{}}]}}"#);
        assert_eq!(validate(fine.as_bytes()), Ok(()));
        assert!(parse(fine.as_bytes()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn validate_and_parse_agree(body in "[\\[\\]{}\":,a0\\\\u.e-]{0,80}") {
            // The same verdict and the same kind of error (the wording may differ).
            let kind = |r: Result<(), JsonError>| r.map_err(|e| std::mem::discriminant(&e));
            proptest::prop_assert_eq!(
                kind(validate(body.as_bytes())),
                kind(parse(body.as_bytes()).map(drop))
            );
        }

        #[test]
        fn whatever_parses_here_is_within_the_depth_limit(body in "[\\[\\]{}\":,a0 ]{0,200}") {
            if let Ok(value) = parse(body.as_bytes()) {
                proptest::prop_assert!(serde_json::to_string(&value).is_ok());
            }
        }
    }
}
