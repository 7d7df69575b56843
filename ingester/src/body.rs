//! Reading a webhook body within bounds: kept up to the limit, and past the
//! limit only fed to the signature check (up to [`OVERSIZE_VERIFY_FACTOR`]
//! times the limit), never stored. So an oversized delivery that is really
//! the sender's can still be told apart from an attacker's, at a memory cost
//! that does not grow with what the client sends.
//!
//! Each provider's signature scheme streams through the same reader: all it
//! needs of one is [`StreamingVerifier`].

use axum::body::{Body, Bytes};
use futures_util::StreamExt as _;
use ledgerhook_providers::{stripe, svix};
use ledgerhook_runtime::http::is_body_timeout;

/// How far past the limit a body is still read to verify its signature.
pub const OVERSIZE_VERIFY_FACTOR: usize = 4;

/// A signature check that takes the body in pieces as they arrive, so the
/// MAC costs the same whether the body is kept or only passed through.
pub trait StreamingVerifier {
    fn update(&mut self, piece: &[u8]);
}

impl StreamingVerifier for svix::BodyVerifier<'_> {
    fn update(&mut self, piece: &[u8]) {
        svix::BodyVerifier::update(self, piece);
    }
}

impl StreamingVerifier for stripe::signature::BodyVerifier<'_> {
    fn update(&mut self, piece: &[u8]) {
        stripe::signature::BodyVerifier::update(self, piece);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit; `complete` when every byte went through the verifier.
    TooLarge {
        complete: bool,
    },
    TimedOut,
    /// The client stopped sending, or the connection broke, part way.
    Incomplete,
}

/// Reads `body`, feeding every byte to `verifier`; `declared` is the
/// Content-Length, if any, so the buffer is sized once.
pub async fn read(
    body: Body,
    limit: usize,
    declared: Option<usize>,
    verifier: &mut impl StreamingVerifier,
) -> Result<Bytes, BodyError> {
    let verify_cap = limit.saturating_mul(OVERSIZE_VERIFY_FACTOR);
    if declared.is_some_and(|length| length > verify_cap) {
        return Err(BodyError::TooLarge { complete: false });
    }
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| {
            if is_body_timeout(&e) {
                BodyError::TimedOut
            } else {
                BodyError::Incomplete
            }
        })?;
        seen = seen.saturating_add(piece.len());
        if seen > verify_cap {
            return Err(BodyError::TooLarge { complete: false });
        }
        verifier.update(&piece);
        if seen <= limit {
            kept.extend_from_slice(&piece);
        } else if !kept.is_empty() {
            // Past the limit nothing is kept; give the memory back now.
            kept = Vec::new();
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge { complete: true });
    }
    Ok(Bytes::from(kept))
}
