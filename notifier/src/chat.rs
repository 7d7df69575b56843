//! The team's chat: a Discord incoming webhook and a Feishu custom bot,
//! each in its own format. The webhook URLs carry their tokens, so they are
//! secrets: every error is stripped of its URL.
//!
//! - Discord: `{"content": "..."}`; any 2xx is success. Mentions are turned
//!   off, so a user id such as `@everyone` from a webhook body cannot ping
//!   the channel.
//! - Feishu: `{"msg_type":"text","content":{"text":"..."}}`; success is a
//!   200 whose body has `code == 0` (Feishu answers 200 with a non-zero
//!   code for most refusals).

use std::time::Duration;

use ledgerhook_domain::Channel;
use ledgerhook_runtime::secret_text::SecretText;
use serde_json::{Value, json};

use crate::SendError;

/// The most of a refusal's body kept in the error.
const MAX_BODY_IN_ERROR: usize = 200;

pub struct ChatHook {
    pub channel: Channel,
    url: SecretText,
    http: reqwest::Client,
}

impl ChatHook {
    /// `url` must be http(s) (checked by the config); `timeout` bounds
    /// each request from connecting to the last byte of the answer.
    pub fn new(channel: Channel, url: SecretText, timeout: Duration) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self { channel, url, http })
    }

    pub fn payload(channel: Channel, text: &str) -> Value {
        match channel {
            Channel::Feishu => json!({"msg_type": "text", "content": {"text": text}}),
            _ => json!({"content": text, "allowed_mentions": {"parse": []}}),
        }
    }

    pub async fn send(&self, text: &str) -> Result<(), SendError> {
        let answer = self
            .http
            .post(self.url.expose())
            .json(&Self::payload(self.channel, text))
            .send()
            .await
            .map_err(|e| SendError::transient(format!("{}: {}", self.channel, e.without_url())))?;
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        let refused = |permanent: bool| SendError {
            permanent,
            reason: format!("{} answered {status}: {}", self.channel, excerpt(&body)),
        };
        if !status.is_success() {
            // A 4xx other than a timeout or a rate limit will not change on
            // its own (a deleted webhook, a malformed request).
            let permanent = status.is_client_error()
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                && status != reqwest::StatusCode::REQUEST_TIMEOUT;
            return Err(refused(permanent));
        }
        if self.channel == Channel::Feishu {
            let code = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_i64));
            if status != reqwest::StatusCode::OK || code != Some(0) {
                return Err(refused(false));
            }
        }
        Ok(())
    }
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(MAX_BODY_IN_ERROR) {
        Some((end, _)) => format!("{}...", &trimmed[..end]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_gets_its_own_format() {
        assert_eq!(
            ChatHook::payload(Channel::Discord, "hi"),
            json!({"content": "hi", "allowed_mentions": {"parse": []}})
        );
        assert_eq!(
            ChatHook::payload(Channel::Feishu, "hi"),
            json!({"msg_type": "text", "content": {"text": "hi"}})
        );
    }
}
