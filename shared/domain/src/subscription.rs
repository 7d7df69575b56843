//! What a provider says a subscription now is: its status, plan and current
//! period (Stripe's `customer.subscription.created`, `.updated`,
//! `.deleted`). The state is kept for the user to read and to stop grants
//! once it has ended; the credits come from the paid invoices (each an
//! order: see [`crate::plan`]).

/// One change of a subscription, as its event tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// The event name exactly as received.
    pub event_type: String,
    pub subscription_id: String,
    /// The provider's customer (Stripe's `cus_...`): the portal opens for it.
    pub customer_id: Option<String>,
    /// Its (first) item and that item's product: a plan change prices that
    /// item anew.
    pub item_id: Option<String>,
    pub product_id: Option<String>,
    /// From our metadata on the subscription.
    pub user_id: Option<String>,
    pub plan_id: Option<String>,
    /// The provider's status (`incomplete`, `active`, `past_due`,
    /// `canceled`, `unpaid`, ...).
    pub status: String,
    /// Unix seconds.
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    /// When the provider made the event (Unix seconds): a change older than
    /// the one already applied, arriving late, changes nothing.
    pub event_created: i64,
}

impl SubscriptionChange {
    /// Whether the subscription has ended: no period after this is paid.
    pub fn ended(&self) -> bool {
        matches!(self.status.as_str(), "canceled" | "incomplete_expired")
    }
}
