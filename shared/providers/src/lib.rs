//! Each payment provider's wire format and client, at the edge: nothing
//! past this crate needs to know who sent a delivery, only the domain's
//! events it reads into.
//!
//! - [`svix`]: the webhook signature scheme Crossmint sends with;
//! - [`crossmint`]: Crossmint's orders API (creating orders, asking about one);
//! - [`stripe`]: Stripe's signatures, events and Checkout Sessions;
//! - [`capped_answer`]: reading a provider's answer up to a size cap;
//!   [`fields`]: reading a field out of a provider's JSON.
//!
//! [`parse`] is the one door inward: a recorded delivery's body, read by
//! its provider's parser, into the domain's [`PaymentEvent`].

pub mod capped_answer;
pub mod crossmint;
pub mod fields;
pub mod stripe;
pub mod svix;

use ledgerhook_domain::{EventParseError, PaymentEvent, Provider};

/// Reads the body of a delivery from `provider` into what it says.
pub fn parse(provider: Provider, body: &[u8]) -> Result<PaymentEvent, EventParseError> {
    match provider {
        Provider::Crossmint => crossmint::webhook::parse(body).map(PaymentEvent::Order),
        Provider::Reconcile => crossmint::order_answer::parse(body).map(PaymentEvent::Order),
        Provider::Stripe => stripe::event::StripeEvent::parse(body).map(|event| match event {
            stripe::event::StripeEvent::Order(event) => PaymentEvent::Order(event),
            stripe::event::StripeEvent::Reversal(reversal) => PaymentEvent::Reversal(reversal),
            stripe::event::StripeEvent::Subscription(change) => PaymentEvent::Subscription(change),
        }),
    }
}
