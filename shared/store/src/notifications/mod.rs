//! Notifications about grants: the buyer's email ("your 3,300 credits have
//! arrived") and the team's chat messages (Discord, Feishu). The one owner
//! of the table `notifications`, an outbox.
//!
//! The guarantee: a notification never fails, delays or rolls back a
//! grant. The worker only writes rows, in the grant's own statement
//! (`ledger::writes`, the one statement on this table outside this module,
//! so that a grant and its notifications commit together with no extra
//! round trip); `ledgerhook-notifier`, a separate process, sends them.
//! A mail server or chat service that is down costs the payment path
//! nothing: the rows wait, are retried with backoff, and are parked with
//! their reason once the attempts are spent.
//!
//! Delivery is at least once with a stable id: a notifier that crashes
//! between sending and marking the row sent sends again, with the same id
//! (the email's `Message-ID`), so a mail client can tell the copy.
//!
//! Which channels exist and what a message says are the domain's
//! (`ledgerhook_domain::notification_channels`, `notification_facts`).
//! - [`outbox`]: the notifier's claims, outcomes and counts;
//! - [`operator`]: what `ledgerhook-admin notifications` lists and resends;
//! - [`to_buyer`]: the buyer's email about a grant by hand or a take-back;
//! - [`scrub`]: dropping addresses and personal facts (retention, erasure).

pub mod operator;
pub mod outbox;
pub mod scrub;
pub mod to_buyer;
