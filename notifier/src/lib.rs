//! The ledgerhook notifier: sends the notifications grants leave in the
//! `notifications` outbox (the buyer's email, the team's Discord and Feishu
//! messages), apart from the payment path, so that a mail server or chat
//! service that is down never touches a grant. Any number of notifiers may
//! share one database; each row is claimed by one at a time.
//!
//! Layout: [`runner`] (the loop: claim due rows, send, record each outcome,
//! back off, park), [`email`] (SMTP through lettre), [`chat`] (Discord and
//! Feishu webhooks), [`render`] (the words), [`app`] (wiring and the
//! `/metrics` and `/healthz` listener), [`config`], [`metrics`]. The table
//! and its statements are `ledgerhook_store::notifications`.

pub mod app;
pub mod chat;
pub mod config;
pub mod email;
pub mod metrics;
pub mod render;
pub mod runner;

pub use app::App;
pub use config::Config;

/// Why a send failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    /// No retry can fix it (a refused recipient, a webhook that is gone):
    /// the row is parked at once.
    pub permanent: bool,
    /// What went wrong, for `last_error` and the log; never a secret (no
    /// webhook URL, no SMTP password).
    pub reason: String,
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            permanent: false,
            reason: reason.into(),
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }
}
