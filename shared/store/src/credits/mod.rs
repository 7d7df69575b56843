//! Credits after the grant: spending, expiry and the balance the user sees.
//!
//! [`book`] is the one writer of the credit tables (`credit_ledger`,
//! `credit_lots`, `user_credits`) and keeps their invariants; the worker's
//! grants ([`crate::ledger`]), spends, expiry, take-backs and grants by hand
//! all move credits through it, so the balance is always the sum of the
//! ledger and the lots never hold more than the balance.

pub mod balance;
pub mod book;
pub mod erasure;
pub mod expiry;
pub mod spend;

pub use balance::{CreditsView, ExpiringCredits, credits_view};
pub use expiry::{ExpiryRun, expire_due};
pub use spend::{Spend, SpendOutcome, spend};

// The operator's runbooks: taking back, granting by hand, a user's history.
pub mod history;
pub mod manual_grant;
pub(crate) mod order_grant;
pub mod take_back;

pub use history::{LedgerEntry, Movement, UserHistory, UserOrder, ledger_page, user_history};
pub use manual_grant::{Granted, ManualGrant, ManualGrantOutcome, grant_by_hand};
pub use take_back::{
    OrderRef, Share, TakeBack, TakeBackCause, TakeBackOutcome, TakenBack, take_back,
};
