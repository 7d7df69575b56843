//! The buyer's email, over SMTP (lettre, on tokio, TLS through rustls).
//!
//! `NOTIFY_SMTP_URL` is lettre's URL form: `smtp://host:port` (plain, for a
//! local relay), `smtp://host:587?tls=required` (STARTTLS, refusing a server
//! that does not offer it), `smtps://host:465` (TLS from the first byte);
//! credentials as `smtp://user:password@host`. The URL is a secret: it is
//! never logged, and no error quotes it.
//!
//! Each message carries the notification's id as its `Message-ID`
//! (`<id@ledgerhook>`): the notifier sends at least once, and a copy sent
//! again after a crash is recognisably the same message.

use std::time::Duration;

use ledgerhook_domain::GrantFacts;
use ledgerhook_runtime::secret_text::SecretText;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use uuid::Uuid;

use crate::{SendError, render};

/// The domain part of every Message-ID.
pub const MESSAGE_ID_DOMAIN: &str = "ledgerhook";

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

/// Why the mail settings cannot be used (names the variable, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailConfigError {
    #[error("NOTIFY_SMTP_URL is not an SMTP URL lettre accepts (smtp://, smtps://, ?tls=required)")]
    Url,
    #[error(
        "NOTIFY_EMAIL_FROM is not an email address (\"Name <addr@example.com>\" or \"addr@example.com\")"
    )]
    From,
}

impl Mailer {
    /// Checks the settings without connecting; the connection is made per
    /// send, each bounded by `timeout`.
    pub fn new(url: &SecretText, from: &str, timeout: Duration) -> Result<Self, MailConfigError> {
        let from: Mailbox = from.parse().map_err(|_| MailConfigError::From)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|_| MailConfigError::Url)?
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            transport,
            from,
            timeout,
        })
    }

    pub fn message_id(id: Uuid) -> String {
        format!("<{id}@{MESSAGE_ID_DOMAIN}>")
    }

    pub async fn send(
        &self,
        id: Uuid,
        recipient: &str,
        facts: &GrantFacts,
    ) -> Result<(), SendError> {
        // The address came from a webhook body: a second check by the mail
        // library, and one that fails is parked, never retried.
        let to: Mailbox = recipient
            .parse()
            .map_err(|_| SendError::permanent("the recipient is not a usable email address"))?;
        let (subject, body) = render::email(facts);
        let message = Message::builder()
            .message_id(Some(Self::message_id(id)))
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::permanent(format!("building the message: {e}")))?;
        // lettre bounds each step; this bounds the whole exchange.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(SendError::transient(format!(
                "the mail server did not finish within {:?}",
                self.timeout
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::permanent(format!(
                "the mail server refused: {e}"
            ))),
            Ok(Err(e)) => Err(SendError::transient(format!("sending mail: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_variable_and_never_the_password() {
        let timeout = Duration::from_secs(1);
        let url = SecretText::new("ftp://user:hunter2@mail.example");
        let error = Mailer::new(&url, "shop@example.com", timeout)
            .err()
            .unwrap();
        assert_eq!(error, MailConfigError::Url);
        assert!(!error.to_string().contains("hunter2"));
        let url = SecretText::new("smtp://user:hunter2@mail.example:2525?tls=required");
        assert!(Mailer::new(&url, "shop@example.com", timeout).is_ok());
        assert!(
            Mailer::new(
                &SecretText::new("smtps://mail.example"),
                "Shop <shop@example.com>",
                timeout
            )
            .is_ok()
        );
        assert_eq!(
            Mailer::new(&url, "not an address", timeout).err(),
            Some(MailConfigError::From)
        );
    }

    #[test]
    fn the_message_id_is_the_notification_id() {
        let id = Uuid::nil();
        assert_eq!(
            Mailer::message_id(id),
            "<00000000-0000-0000-0000-000000000000@ledgerhook>"
        );
    }
}
