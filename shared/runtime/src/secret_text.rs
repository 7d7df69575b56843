//! A secret string (an API key, a database URL with its password) that can
//! sit in a `#[derive(Debug)]` config without ever reaching a log: its
//! `Debug` shows only that it is there. The value is read with
//! [`SecretText::expose`], at the one place that sends it.

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretText {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretText::new("sk_live_not_a_real_key");
        let config = format!("{:?}", Some(&secret));
        assert!(!config.contains("sk_live"), "{config}");
        assert!(config.contains("[redacted]"), "{config}");
        assert_eq!(secret.expose(), "sk_live_not_a_real_key");
    }
}
