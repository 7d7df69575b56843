//! The sign-in provider's public keys (`AUTH_JWKS_URL`): fetched over
//! HTTPS, kept in memory, fetched again when they are older than
//! `AUTH_JWKS_CACHE_SECS` or a token names a key we do not have (a
//! rotation).
//!
//! What a stream of tokens with made-up `kid`s costs us: at most one fetch
//! per `AUTH_JWKS_MIN_REFRESH_SECS`, whatever their number; fetches are
//! single-flight, and inside that interval an unknown key is refused
//! without one. A failed fetch keeps the keys we had, so the provider's
//! outage does not sign everybody out.
//!
//! Only signing keys of the three algorithms we accept are taken, each
//! bound to its algorithm by its type (RSA: RS256, P-256: ES256, Ed25519:
//! EdDSA): a token cannot choose how its key is used. A symmetric (`oct`)
//! key in the set is never taken: it would be a secret published at a URL.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::{Refusal, TokenError};
use crate::metrics;

/// The largest key set we read; real ones are a few kilobytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys taken from one set; providers publish two or three.
const MAX_KEYS: usize = 64;
const MAX_KID_BYTES: usize = 256;
/// RSA moduli from 2048 to 8192 bits: shorter is breakable, longer is a
/// way to make each verification expensive.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// `AUTH_JWKS_URL`: `https://` only.
    pub url: String,
    /// `AUTH_JWKS_CACHE_SECS` (default 3600): keys older than this are
    /// fetched again at the next token.
    pub max_age: Duration,
    /// `AUTH_JWKS_MIN_REFRESH_SECS` (default 30): the least time between
    /// two fetches, whatever asks for them.
    pub min_refresh: Duration,
    /// `AUTH_JWKS_TIMEOUT_MS` (default 5000).
    pub timeout: Duration,
}

struct KeySet {
    keys: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
    fetched_at: Option<Instant>,
}

pub struct Jwks {
    settings: JwksSettings,
    http: reqwest::Client,
    current: RwLock<Arc<KeySet>>,
    /// When a fetch last started; held across the fetch, so concurrent
    /// askers wait for it instead of fetching too.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(settings: JwksSettings) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .https_only(true)
            // A redirect could lead anywhere; the URL configured is the one
            // trusted.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .build()?;
        Ok(Self {
            settings,
            http,
            current: RwLock::new(Arc::new(KeySet {
                keys: HashMap::new(),
                fetched_at: None,
            })),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The key `kid` for a token signed with `alg`.
    pub async fn key(&self, kid: &str, alg: Algorithm) -> Result<Arc<DecodingKey>, TokenError> {
        let set = self.snapshot();
        let fresh = set
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.settings.max_age);
        let set = if fresh && set.keys.contains_key(kid) {
            set
        } else {
            self.refresh().await;
            self.snapshot()
        };
        match set.keys.get(kid) {
            Some((key_alg, key)) if *key_alg == alg => Ok(Arc::clone(key)),
            Some(_) => Err(TokenError::Refused(Refusal::Algorithm)),
            None if set.keys.is_empty() => Err(TokenError::KeysUnavailable),
            None => Err(TokenError::Refused(Refusal::UnknownKey)),
        }
    }

    /// Fetches the keys unless a fetch started less than the minimum
    /// interval ago; a failure is logged and counted, and the keys we had
    /// stay.
    pub async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.settings.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                metrics::jwks_fetched("ok", keys.len());
                tracing::info!(url = %self.settings.url, keys = keys.len(), "sign-in provider's keys fetched");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                });
            }
            Err(problem) => {
                metrics::jwks_fetched("failed", self.snapshot().keys.len());
                tracing::warn!(url = %self.settings.url, %problem, "fetching the sign-in provider's keys failed; keeping the keys we had");
            }
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn fetch(&self) -> Result<HashMap<String, (Algorithm, Arc<DecodingKey>)>, String> {
        let mut response = self
            .http
            .get(&self.settings.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("the key set is over {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body)?;
        if keys.is_empty() {
            return Err("the key set holds no RS256, ES256 or EdDSA signing key with a kid".into());
        }
        Ok(keys)
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// One JWK's fields that matter here (RFC 7517, 7518, 8037).
#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The usable keys of a JWKS document by `kid`; keys of other types or
/// uses are skipped, not an error (providers publish encryption keys too).
pub(super) fn parse_key_set(
    body: &[u8],
) -> Result<HashMap<String, (Algorithm, Arc<DecodingKey>)>, String> {
    let document: Document =
        serde_json::from_slice(body).map_err(|_| "the answer is not a JWKS document".to_owned())?;
    Ok(document
        .keys
        .into_iter()
        .filter_map(|value| serde_json::from_value::<RawKey>(value).ok())
        .filter_map(usable)
        .take(MAX_KEYS)
        .map(|(kid, alg, key)| (kid, (alg, Arc::new(key))))
        .collect())
}

fn usable(raw: RawKey) -> Option<(String, Algorithm, DecodingKey)> {
    let kid = raw
        .kid
        .filter(|kid| !kid.is_empty() && kid.len() <= MAX_KID_BYTES)?;
    if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
        return None;
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return None;
    }
    let (alg, key) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (raw.n?, raw.e?);
            let modulus = URL_SAFE_NO_PAD.decode(&n).ok()?;
            // A leading zero byte does not count towards the key's size.
            let bytes = modulus.iter().skip_while(|b| **b == 0).count();
            if !RSA_MODULUS_BYTES.contains(&bytes) {
                return None;
            }
            (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(&n, &e).ok()?,
            )
        }
        ("EC", Some("P-256")) => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(&raw.x?, &raw.y?).ok()?,
        ),
        ("OKP", Some("Ed25519")) => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(&raw.x?).ok()?,
        ),
        _ => return None,
    };
    // A key that names its algorithm is used for that one only.
    let named = match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    };
    if raw.alg.as_deref().is_some_and(|a| a != named) {
        return None;
    }
    Some((kid, alg, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signing_keys_of_the_accepted_types_are_taken() {
        let modulus = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        let short = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let point = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let document = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": modulus, "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "rsa-short", "n": short, "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-enc", "n": modulus, "e": "AQAB", "use": "enc"},
            {"kty": "RSA", "kid": "rsa-ps", "n": modulus, "e": "AQAB", "alg": "PS256"},
            {"kty": "RSA", "n": modulus, "e": "AQAB"},
            {"kty": "EC", "kid": "p256", "crv": "P-256", "x": point, "y": point},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": point, "y": point},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": point, "key_ops": ["verify"]},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "unheard-of", "kid": "odd"},
            "not even an object",
        ]});
        let keys = parse_key_set(document.to_string().as_bytes()).unwrap();
        let mut kids: Vec<(&str, Algorithm)> =
            keys.iter().map(|(k, (a, _))| (k.as_str(), *a)).collect();
        kids.sort_by_key(|(k, _)| *k);
        assert_eq!(
            kids,
            [
                ("ed", Algorithm::EdDSA),
                ("p256", Algorithm::ES256),
                ("rsa", Algorithm::RS256)
            ]
        );
        assert!(parse_key_set(b"<html>").is_err());
        assert!(parse_key_set(br#"{"keys": []}"#).unwrap().is_empty());
    }
}
