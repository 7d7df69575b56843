//! Reading fields out of a provider's JSON tolerantly: an id from
//! metadata, a text at a path, an amount as exact decimal text.

use ledgerhook_domain::order_event::MAX_REF_LEN;
use ledgerhook_domain::{AmountError, Usdt};
use serde_json::Value;

/// A short id from metadata; absent, empty or oversized counts as absent.
pub fn reference(metadata: Option<&Value>, key: &str) -> Option<String> {
    let text = metadata?.get(key)?.as_str()?.trim();
    (!text.is_empty() && text.chars().count() <= MAX_REF_LEN).then(|| text.to_owned())
}

pub fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// An amount may come as a decimal string (the documented form) or, from a
/// sloppier sender, as a JSON number; either way it goes through the exact
/// decimal parser as text, never through a float.
pub fn amount_at(value: &Value, path: &[&str]) -> Option<Result<Usdt, AmountError>> {
    let found = path.iter().try_fold(value, |v, key| v.get(key))?;
    match found {
        Value::String(text) => Some(Usdt::parse(text)),
        Value::Number(number) => Some(Usdt::parse(&number.to_string())),
        Value::Null => None,
        _ => Some(Err(AmountError::NotDecimal)),
    }
}
