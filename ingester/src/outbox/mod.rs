//! Getting recorded deliveries onto the queue without ever losing one.
//!
//! The webhook handler answers as soon as the delivery is committed and hands
//! it to the [`publisher`] through a bounded channel without waiting. The
//! publisher pipelines persistent, mandatory publishes with confirms and
//! deletes confirmed rows from `delivery_outbox` (written in the same
//! statement as the delivery). Anything that falls through (channel full,
//! broker down, a nack, a crash) stays in the outbox, and the [`relay`] finds
//! it and publishes it again. A delivery may therefore be
//! published twice; workers are idempotent per delivery, so that is harmless.
//! What travels is a [`ledgerhook_domain::Delivery`]; the
//! outbox's SQL is `ledgerhook_store::deliveries::outbox`.

pub mod publisher;
pub mod relay;
