//! Reading a provider's HTTP answer (Crossmint, Stripe) with a size cap, so
//! a misbehaving or hostile peer cannot make us buffer without bound.

/// Why the answer's body could not be read.
#[derive(Debug)]
pub enum CappedReadError {
    /// Longer than the cap; reading stopped there.
    TooLarge,
    /// The connection failed while the body was arriving.
    Transport(reqwest::Error),
}

/// The whole body of `response`, if it is at most `max_bytes`.
pub async fn read_capped(
    response: &mut reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, CappedReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedReadError::Transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(CappedReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
