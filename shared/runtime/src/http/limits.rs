//! The bounds on a client's patience, read from the environment.

use std::time::Duration;

use crate::config::EnvReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `HTTP_HEADER_TIMEOUT_MS` (default 10000): from a new connection, or
    /// the first byte of a request, until its headers are complete. Past it:
    /// `408` and the connection is closed.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT_MS` (default 30000): from the headers until the
    /// whole body has arrived. Past it: `408 REQUEST_TIMEOUT`, closed.
    pub body_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_MS` (default 60000): how long a keep-alive
    /// connection may wait between requests before it is closed.
    pub idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS` (default 2048): connections held at once;
    /// beyond it a new connection gets `503 TOO_MANY_CONNECTIONS` and is closed.
    pub max_connections: usize,
    /// `HTTP_MAX_HEADER_BYTES` (default 16384): the request line and headers
    /// together. Beyond it: `431 HEADERS_TOO_LARGE`, closed. hyper's own
    /// bound (about 400 KB) let every forged request make us read and parse
    /// that much before any check of ours could refuse it; a webhook's or a
    /// browser's headers are a few kilobytes.
    pub max_header_bytes: usize,
}

/// Below this even an ordinary browser request may not fit.
const MIN_HEADER_BYTES: usize = 4096;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 2048,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl ServerLimits {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let default = Self::default();
        let mut millis = |name: &'static str, default: Duration| {
            let value: u64 = env.parsed_or(name, default.as_millis() as u64);
            if value == 0 {
                env.invalid(format!("{name} must be at least 1"));
            }
            Duration::from_millis(value)
        };
        let limits = Self {
            header_timeout: millis("HTTP_HEADER_TIMEOUT_MS", default.header_timeout),
            body_timeout: millis("HTTP_BODY_TIMEOUT_MS", default.body_timeout),
            idle_timeout: millis("HTTP_IDLE_TIMEOUT_MS", default.idle_timeout),
            max_connections: env.parsed_or("HTTP_MAX_CONNECTIONS", default.max_connections),
            max_header_bytes: env.parsed_or("HTTP_MAX_HEADER_BYTES", default.max_header_bytes),
        };
        if limits.max_header_bytes < MIN_HEADER_BYTES {
            env.invalid(format!(
                "HTTP_MAX_HEADER_BYTES must be at least {MIN_HEADER_BYTES}"
            ));
        }
        if limits.max_connections == 0 {
            env.invalid("HTTP_MAX_CONNECTIONS must be at least 1".into());
        }
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut env = EnvReader::new(|name: &str| {
            (name == "HTTP_IDLE_TIMEOUT_MS").then(|| "1500".to_owned())
        });
        let limits = ServerLimits::from_env(&mut env);
        assert!(env.finish().is_ok());
        assert_eq!(limits.idle_timeout, Duration::from_millis(1500));
        assert_eq!(limits.header_timeout, Duration::from_secs(10));
        assert_eq!(limits.max_connections, 2048);
    }

    #[test]
    fn zero_is_refused_by_name() {
        let mut env = EnvReader::new(|name: &str| {
            matches!(name, "HTTP_BODY_TIMEOUT_MS" | "HTTP_MAX_CONNECTIONS").then(|| "0".to_owned())
        });
        ServerLimits::from_env(&mut env);
        let error = env.finish().unwrap_err().to_string();
        assert!(error.contains("HTTP_BODY_TIMEOUT_MS"), "{error}");
        assert!(error.contains("HTTP_MAX_CONNECTIONS"), "{error}");
    }
}
