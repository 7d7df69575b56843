//! The refusals of tokens signed with the shared secret; the provider's
//! keys are tested against a real JWKS server (tests/it/api_auth.rs).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &str = "test-only-jwt-secret-0123456789abcdef";

fn secret() -> JwtSecret {
    JwtSecret::new(SECRET).unwrap()
}

fn with_secret(policy: Policy) -> Authenticator {
    Authenticator {
        shared_secret: Some(secret()),
        jwks: None,
        policy,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn check(token: &str) -> Result<String, TokenError> {
    with_secret(Policy::default()).user(token).await
}

fn refused(refusal: Refusal) -> Result<String, TokenError> {
    Err(TokenError::Refused(refusal))
}

/// A token with this header and these claims, HMAC-signed with `key`.
fn forge(header: &Header, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(key).unwrap()).unwrap()
}

#[tokio::test]
async fn a_signed_token_names_its_user() {
    let token = secret().sign("user-1", now() + 60);
    assert_eq!(check(&token).await.unwrap(), "user-1");
}

#[tokio::test]
async fn expired_tokens_are_refused_after_the_leeway() {
    assert!(
        check(&secret().sign("u", now() - 10)).await.is_ok(),
        "within the leeway"
    );
    let late = secret().sign("u", now() - LEEWAY_SECS as i64 - 5);
    assert_eq!(check(&late).await, refused(Refusal::Expired));
}

#[tokio::test]
async fn another_key_or_a_changed_claim_is_refused() {
    let other = JwtSecret::new("another-test-secret-0123456789abcdef").unwrap();
    assert_eq!(
        check(&other.sign("u", now() + 60)).await,
        refused(Refusal::Signature)
    );
    let token = secret().sign("user-1", now() + 60);
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = URL_SAFE_NO_PAD.encode(json!({"sub": "user-2", "exp": now() + 60}).to_string());
    parts[1] = &tampered;
    assert_eq!(check(&parts.join(".")).await, refused(Refusal::Signature));
}

#[tokio::test]
async fn none_and_other_algorithms_are_refused() {
    let claims = json!({"sub": "u", "exp": now() + 60});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_eq!(check(&none).await, refused(Refusal::Malformed));
    let hs512 = forge(&Header::new(Algorithm::HS512), &claims, SECRET.as_bytes());
    assert_eq!(check(&hs512).await, refused(Refusal::Algorithm));
    // RS256 without a provider's keys: no key to try, whatever it is
    // signed with (here, the shared secret, as in algorithm confusion).
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k".into());
    let confused = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(serde_json::to_string(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert_eq!(check(&confused).await, refused(Refusal::Algorithm));
}

#[tokio::test]
async fn hs256_is_refused_where_only_a_provider_signs() {
    let provider_only = Authenticator {
        shared_secret: None,
        jwks: None,
        policy: Policy::default(),
    };
    let token = secret().sign("u", now() + 60);
    assert_eq!(
        provider_only.user(&token).await,
        refused(Refusal::Algorithm)
    );
}

#[tokio::test]
async fn an_unknown_crit_header_is_refused() {
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["b64".into()]);
    let token = forge(
        &header,
        &json!({"sub": "u", "exp": now() + 60}),
        SECRET.as_bytes(),
    );
    assert_eq!(check(&token).await, refused(Refusal::CriticalHeader));
}

#[tokio::test]
async fn exp_and_a_user_are_required_and_nbf_is_honoured() {
    let sign = |claims: Value| secret().sign_claims(&claims);
    assert_eq!(
        check(&sign(json!({"sub": "u"}))).await,
        refused(Refusal::NoExpiry)
    );
    assert_eq!(
        check(&sign(json!({"exp": now() + 60}))).await,
        refused(Refusal::NoUser)
    );
    assert_eq!(
        check(&sign(json!({"sub": "  ", "exp": now() + 60}))).await,
        refused(Refusal::NoUser)
    );
    assert_eq!(
        check(&sign(json!({"sub": 42, "exp": now() + 60}))).await,
        refused(Refusal::NoUser)
    );
    assert_eq!(
        check(&sign(json!({"sub": "u", "exp": "tomorrow"}))).await,
        refused(Refusal::NoExpiry)
    );
    assert_eq!(
        check(&sign(
            json!({"sub": "u", "exp": now() + 600, "nbf": now() + 300})
        ))
        .await,
        refused(Refusal::NotYetValid)
    );
}

#[tokio::test]
async fn a_token_living_longer_than_the_horizon_is_refused() {
    let day = DEFAULT_MAX_LIFETIME_SECS;
    assert!(check(&secret().sign("u", now() + day)).await.is_ok());
    assert_eq!(
        check(&secret().sign("u", now() + 10 * 365 * day)).await,
        refused(Refusal::LifetimeTooLong)
    );
    let short = with_secret(Policy {
        max_lifetime_secs: 60,
        ..Policy::default()
    });
    assert!(short.user(&secret().sign("u", now() + 3600)).await.is_err());
    assert!(short.user(&secret().sign("u", now() + 60)).await.is_ok());
}

#[tokio::test]
async fn an_oversized_or_nul_subject_is_refused() {
    let long = "u".repeat(MAX_SUB_BYTES + 1);
    assert_eq!(
        check(&secret().sign(&long, now() + 60)).await,
        refused(Refusal::UserTooLong)
    );
    let exact = "u".repeat(MAX_SUB_BYTES);
    assert!(check(&secret().sign(&exact, now() + 60)).await.is_ok());
    assert_eq!(
        check(&secret().sign("user\u{0}1", now() + 60)).await,
        Err(TokenError::NulInSubject)
    );
}

#[tokio::test]
async fn the_user_may_come_from_another_claim() {
    let by_email = with_secret(Policy {
        user_claim: "uid".into(),
        ..Policy::default()
    });
    let token = secret().sign_claims(&json!({"sub": "s", "uid": "u-9", "exp": now() + 60}));
    assert_eq!(by_email.user(&token).await.unwrap(), "u-9");
    assert_eq!(
        by_email.user(&secret().sign("s", now() + 60)).await,
        refused(Refusal::NoUser)
    );
}

#[tokio::test]
async fn issuer_and_audience_are_the_providers_not_the_shared_secrets() {
    let strict = with_secret(Policy {
        issuer: Some("https://issuer.example/".into()),
        audience: Some("ledgerhook".into()),
        ..Policy::default()
    });
    // Our own backend's tokens carry neither, and an aud for another API
    // does not matter to the shared secret either.
    let token = secret().sign_claims(&json!({"sub": "u", "exp": now() + 60, "aud": "other"}));
    assert_eq!(strict.user(&token).await.unwrap(), "u");
}

#[tokio::test]
async fn garbage_is_refused_and_short_secrets_are_not_keys() {
    for token in ["", "a.b", "a.b.c.d", "....", "x.y.z", &"a".repeat(9000)] {
        assert!(check(token).await.is_err(), "{token}");
    }
    assert!(JwtSecret::new("short").is_none());
}
