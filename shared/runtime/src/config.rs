//! Reading configuration from the environment, validated at start.
//!
//! Every binary builds its typed config through an [`EnvReader`], which keeps
//! going after the first problem so that one start-up error names every
//! missing or invalid variable at once: an operator fixes a deployment in one
//! round instead of one variable per restart. Values of secret
//! variables never appear in an error.

use std::fmt;
use std::str::FromStr;

/// The environment variables shared by the ingester and the worker, with
/// defaults that work against the services on a development machine.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/ledgerhook";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_QUEUE_PREFIX: &str = "ledgerhook";
/// Crossmint's staging API (`CROSSMINT_API_URL`), for the API's orders and
/// the worker's reconcile.
pub const DEFAULT_CROSSMINT_API_URL: &str = "https://staging.crossmint.com/api";

pub struct EnvReader<F> {
    lookup: F,
    missing: Vec<&'static str>,
    invalid: Vec<String>,
}

/// The process environment; empty values count as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl EnvReader<fn(&str) -> Option<String>> {
    pub fn from_process() -> Self {
        Self::new(process_env)
    }
}

impl<F: Fn(&str) -> Option<String>> EnvReader<F> {
    /// Reads through `lookup`, so tests can pass a map instead of mutating
    /// the process environment.
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            missing: Vec::new(),
            invalid: Vec::new(),
        }
    }

    /// A variable without a default; its absence is recorded. Set but
    /// blank counts as absent: an empty key is no key.
    pub fn required(&mut self, name: &'static str) -> Option<String> {
        let value = (self.lookup)(name).filter(|v| !v.trim().is_empty());
        if value.is_none() {
            self.missing.push(name);
        }
        value
    }

    /// A variable without a default that may be left unset (or blank).
    pub fn optional(&mut self, name: &'static str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn or_default(&mut self, name: &'static str, default: &str) -> String {
        (self.lookup)(name).unwrap_or_else(|| default.to_owned())
    }

    /// A parsed variable with a default; an unparsable value is recorded
    /// with the value shown (never use this for secrets).
    pub fn parsed_or<T: FromStr>(&mut self, name: &'static str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match (self.lookup)(name) {
            None => default,
            Some(text) => match text.trim().parse() {
                Ok(value) => value,
                Err(e) => {
                    self.invalid.push(format!("{name}={text:?}: {e}"));
                    default
                }
            },
        }
    }

    /// Records a problem found while interpreting a value (for a secret, the
    /// description must not include the value).
    pub fn invalid(&mut self, description: String) {
        self.invalid.push(description);
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.missing.is_empty() && self.invalid.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                missing: self.missing,
                invalid: self.invalid,
            })
        }
    }
}

/// Every configuration problem found at start, in one error.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
    pub invalid: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        if !self.missing.is_empty() {
            write!(
                f,
                " missing environment variables: {};",
                self.missing.join(", ")
            )?;
        }
        if !self.invalid.is_empty() {
            write!(f, " invalid values: {};", self.invalid.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn reader(pairs: &[(&str, &str)]) -> EnvReader<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvReader::new(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn every_missing_and_invalid_variable_is_named_in_one_error() {
        let mut env = reader(&[("PORTS", "many")]);
        assert!(env.required("FIRST_SECRET").is_none());
        assert!(env.required("SECOND_SECRET").is_none());
        assert_eq!(env.parsed_or("PORTS", 3u16), 3);
        let message = env.finish().unwrap_err().to_string();
        assert!(message.contains("FIRST_SECRET, SECOND_SECRET"), "{message}");
        assert!(message.contains("PORTS=\"many\""), "{message}");
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        let mut env = reader(&[("SET", "x"), ("N", "7")]);
        assert_eq!(env.or_default("SET", "d"), "x");
        assert_eq!(env.or_default("UNSET", "d"), "d");
        assert_eq!(env.parsed_or("N", 1u32), 7);
        assert!(env.finish().is_ok());
    }
}
