//! Stripe, the card-payment provider: everything specific to it, at the
//! edge. [`signature`] verifies (and, for tests and tools, makes) the
//! `Stripe-Signature` header; [`event`] reads an event into the domain's
//! order events and payment reversals; [`checkout`] creates Checkout
//! Sessions through Stripe's API; [`reads`] reads what reconcile needs
//! (undelivered events, a session's state). After those, a Stripe payment
//! takes the same path as a Crossmint one.

pub mod checkout;
pub mod event;
pub mod reads;
pub mod signature;
