//! Credits after the grant: spending, expiry and the balance the user sees.
//!
//! Grants are written by the worker (see [`crate::ledger`]); everything here
//! is a ledger entry too, so the balance is always the sum of the ledger.
//! Lock order wherever credits move: the user's balance row, then their lots.

pub mod balance;
pub mod expiry;
pub mod spend;

pub use balance::{CreditsView, ExpiringCredits, credits_view};
pub use expiry::{ExpiryRun, expire_due};
pub use spend::{Spend, SpendOutcome, spend};

// The operator's runbooks: taking back, granting by hand, a user's history.
pub mod history;
pub mod manual_grant;
mod order_grant;
pub mod take_back;

pub use history::{Movement, UserHistory, UserOrder, user_history};
pub use manual_grant::{Granted, ManualGrant, ManualGrantOutcome, grant_by_hand};
pub use take_back::{
    OrderRef, Share, TakeBack, TakeBackCause, TakeBackOutcome, TakenBack, take_back,
};
