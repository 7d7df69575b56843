//! The order state machine: what one event does to one order.
//!
//! Pure and synchronous so every transition is unit-tested; the worker runs
//! it inside the transaction that holds the order's row lock and then writes
//! exactly what it returns.
//!
//! ```text
//!   pending ──succeeded──▶ completed   (paid and granted in one transaction)
//!   pending ──failed─────▶ failed ──succeeded──▶ completed  (money received wins)
//!   pending ──cancelled──▶ cancelled ──succeeded──▶ completed (money received wins)
//!   completed ──succeeded──▶ completed  (duplicate: nothing granted, counted)
//!   completed ──failed/cancelled──▶ completed  (anomaly: recorded, counted)
//!   pending ──(no payment within PAYMENT_TIMEOUT_MINUTES)──▶ expired  (the worker's timeout job)
//!   expired ──succeeded──▶ completed  (money received wins; anomaly counted)
//!   expired ──failed/cancelled──▶ expired  (recorded)
//!   any ──succeeded with wrong amount, currency, user or package──▶ held for review
//! ```

use super::order_event::{EventKind, OrderEvent};
use super::package::{Credits, Package};
use super::payment_provider::PaymentProvider;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Paid,
    Completed,
    Failed,
    Cancelled,
    /// Not paid within the payment timeout; set by the timeout job
    /// (`ledger::orders::expire_stale`), never by an event.
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Paid,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The facts about a stored order that decide what an event may do.
#[derive(Debug, Clone)]
pub struct OrderFacts<'a> {
    /// Who takes the order's payment: its events must come from there, in
    /// its currency.
    pub provider: PaymentProvider,
    pub status: OrderStatus,
    pub user_id: &'a str,
    pub package: &'a Package,
    /// Set when an earlier event was held for review; no automatic grant
    /// happens on such an order until a person has looked.
    pub under_review: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Money received and matching: mark paid and completed, grant credits.
    Grant {
        credits: Credits,
        /// Set when the grant overrides an earlier failed or cancelled state.
        anomaly: Option<&'static str>,
    },
    /// A grant-triggering event for an order already granted.
    Duplicate,
    /// The event contradicts the order (amount, currency, user, package):
    /// nothing is granted and the order is held for review.
    Conflict { reason: String },
    /// A status change without credits.
    Transition { to: OrderStatus },
    /// Recorded on the order without a status change; an anomaly is an event
    /// that makes no sense in the order's state and is counted.
    Record { anomaly: Option<&'static str> },
}

pub fn decide(order: &OrderFacts<'_>, event: &OrderEvent) -> Decision {
    use OrderStatus::*;
    // Only the order's own provider moves it; a payment from another is a
    // conflict (below), anything else from another is only recorded.
    if event.provider != order.provider && event.kind != EventKind::PaymentSucceeded {
        return Decision::Record {
            anomaly: Some("an event from another provider than the order's"),
        };
    }
    match event.kind {
        EventKind::PaymentSucceeded => {
            if let Some(reason) = contradiction(order, event) {
                return Decision::Conflict { reason };
            }
            match order.status {
                Completed => Decision::Duplicate,
                _ if order.under_review => Decision::Record {
                    anomaly: Some("payment on an order held for review"),
                },
                Pending | Paid => Decision::Grant {
                    credits: order.package.total_credits(),
                    anomaly: None,
                },
                Failed => Decision::Grant {
                    credits: order.package.total_credits(),
                    anomaly: Some("payment succeeded after it had failed"),
                },
                Cancelled => Decision::Grant {
                    credits: order.package.total_credits(),
                    anomaly: Some("payment succeeded after cancellation"),
                },
                Expired => Decision::Grant {
                    credits: order.package.total_credits(),
                    anomaly: Some("payment after timeout"),
                },
            }
        }
        EventKind::PaymentFailed => match order.status {
            Pending => Decision::Transition { to: Failed },
            // The buyer never paid in time, and now the provider says so.
            Failed | Expired => Decision::Record { anomaly: None },
            Paid | Completed => Decision::Record {
                anomaly: Some("payment failed after it had succeeded"),
            },
            Cancelled => Decision::Record {
                anomaly: Some("payment failed after cancellation"),
            },
        },
        EventKind::Cancelled => match order.status {
            Pending | Failed => Decision::Transition { to: Cancelled },
            // Our timeout closed it first; the cancellation agrees.
            Cancelled | Expired => Decision::Record { anomaly: None },
            Paid | Completed => Decision::Record {
                anomaly: Some("cancelled after payment"),
            },
        },
        EventKind::Informational | EventKind::Unknown => Decision::Record { anomaly: None },
    }
}

/// What in a success event disagrees with the order, if anything. Money only
/// moves when the received amount and currency are exactly the package's.
fn contradiction(order: &OrderFacts<'_>, event: &OrderEvent) -> Option<String> {
    if event.provider != order.provider {
        return Some(format!(
            "a {} event for a {} order",
            event.provider.as_str(),
            order.provider.as_str()
        ));
    }
    if let Some(user) = &event.user_id
        && user != order.user_id
    {
        return Some("event names another user than the order".into());
    }
    if let Some(package) = &event.package_id
        && package != order.package.id
    {
        return Some(format!(
            "event names package {package:?}, the order is for {:?}",
            order.package.id
        ));
    }
    let Some(payment) = &event.payment else {
        return Some("success event carries no amount".into());
    };
    let amount = match payment.amount {
        Ok(amount) => amount,
        Err(e) => return Some(format!("received amount is unusable: {e}")),
    };
    let currency = order.provider.currency();
    match payment.currency.as_deref() {
        Some(received) if received == currency => {}
        Some(other) => return Some(format!("received currency {other:?}, expected {currency}")),
        None => return Some("received currency is missing".into()),
    }
    if amount != order.package.price {
        return Some(format!(
            "received {amount} {currency}, the package costs {}",
            order.package.price
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_event::PaymentClaim;
    use crate::package::find_package;
    use crate::usdt::Usdt;

    fn facts(status: OrderStatus) -> OrderFacts<'static> {
        OrderFacts {
            provider: PaymentProvider::Crossmint,
            status,
            user_id: "user-1",
            package: find_package("pro").unwrap(),
            under_review: false,
        }
    }

    fn event(kind: EventKind, amount: &str, currency: &str) -> OrderEvent {
        OrderEvent {
            provider: PaymentProvider::Crossmint,
            event_type: "test".into(),
            kind,
            order_id: "order-1".into(),
            user_id: Some("user-1".into()),
            package_id: Some("pro".into()),
            payment: Some(PaymentClaim {
                amount: Usdt::parse(amount),
                currency: Some(currency.into()),
                chain: None,
                transaction_hash: None,
            }),
            failure_reason: None,
            buyer_email: None,
            payment_intent: None,
            subscription: None,
        }
    }

    fn paid() -> OrderEvent {
        event(EventKind::PaymentSucceeded, "50.00", "USDT")
    }

    #[test]
    fn matching_payment_on_pending_order_grants_the_package_total() {
        assert_eq!(
            decide(&facts(OrderStatus::Pending), &paid()),
            Decision::Grant {
                credits: 3300,
                anomaly: None
            }
        );
    }

    #[test]
    fn payment_on_completed_order_is_a_duplicate() {
        assert_eq!(
            decide(&facts(OrderStatus::Completed), &paid()),
            Decision::Duplicate
        );
    }

    #[test]
    fn money_received_wins_over_failed_and_cancelled() {
        for status in [OrderStatus::Failed, OrderStatus::Cancelled] {
            let decision = decide(&facts(status), &paid());
            assert!(
                matches!(
                    decision,
                    Decision::Grant {
                        credits: 3300,
                        anomaly: Some(_)
                    }
                ),
                "{status:?}: {decision:?}"
            );
        }
    }

    #[test]
    fn wrong_amount_currency_user_or_package_is_a_conflict_even_when_completed() {
        let mut wrong_user = paid();
        wrong_user.user_id = Some("user-2".into());
        let mut wrong_package = paid();
        wrong_package.package_id = Some("vip".into());
        let mut no_amount = paid();
        no_amount.payment = None;
        let cases = [
            event(EventKind::PaymentSucceeded, "49.99", "USDT"),
            event(EventKind::PaymentSucceeded, "500", "USDT"),
            event(EventKind::PaymentSucceeded, "50", "USDC"),
            event(EventKind::PaymentSucceeded, "abc", "USDT"),
            wrong_user,
            wrong_package,
            no_amount,
        ];
        for status in [OrderStatus::Pending, OrderStatus::Completed] {
            for case in &cases {
                assert!(
                    matches!(decide(&facts(status), case), Decision::Conflict { .. }),
                    "{status:?} {case:?}"
                );
            }
        }
    }

    #[test]
    fn an_event_from_another_provider_is_a_conflict_and_stripe_pays_in_usd() {
        let mut stripe_order = facts(OrderStatus::Pending);
        stripe_order.provider = PaymentProvider::Stripe;
        assert!(
            matches!(decide(&stripe_order, &paid()), Decision::Conflict { reason } if reason.contains("crossmint event")),
            "a Crossmint event naming a Stripe order's id"
        );
        let mut card = event(EventKind::PaymentSucceeded, "50.00", "USD");
        card.provider = PaymentProvider::Stripe;
        assert!(matches!(
            decide(&stripe_order, &card),
            Decision::Grant { credits: 3300, .. }
        ));
        let mut cancelled = event(EventKind::Cancelled, "50", "USDT");
        cancelled.provider = PaymentProvider::Crossmint;
        assert!(
            matches!(
                decide(&stripe_order, &cancelled),
                Decision::Record { anomaly: Some(_) }
            ),
            "another provider's cancellation does not move the order"
        );
        let mut usdt = card.clone();
        usdt.payment.as_mut().unwrap().currency = Some("USDT".into());
        assert!(matches!(
            decide(&stripe_order, &usdt),
            Decision::Conflict { .. }
        ));
    }

    #[test]
    fn order_under_review_is_not_granted_automatically() {
        let mut order = facts(OrderStatus::Pending);
        order.under_review = true;
        assert!(matches!(
            decide(&order, &paid()),
            Decision::Record { anomaly: Some(_) }
        ));
    }

    #[test]
    fn failure_and_cancellation_move_only_unpaid_orders() {
        let failed = event(EventKind::PaymentFailed, "50", "USDT");
        let cancelled = event(EventKind::Cancelled, "50", "USDT");
        assert_eq!(
            decide(&facts(OrderStatus::Pending), &failed),
            Decision::Transition {
                to: OrderStatus::Failed
            }
        );
        assert_eq!(
            decide(&facts(OrderStatus::Failed), &cancelled),
            Decision::Transition {
                to: OrderStatus::Cancelled
            }
        );
        assert!(matches!(
            decide(&facts(OrderStatus::Completed), &failed),
            Decision::Record { anomaly: Some(_) }
        ));
        assert!(matches!(
            decide(&facts(OrderStatus::Completed), &cancelled),
            Decision::Record { anomaly: Some(_) }
        ));
    }

    #[test]
    fn informational_events_never_change_status() {
        let delivered = event(EventKind::Informational, "50", "USDT");
        assert_eq!(
            decide(&facts(OrderStatus::Pending), &delivered),
            Decision::Record { anomaly: None }
        );
    }

    #[test]
    fn a_payment_after_the_timeout_still_grants_as_an_anomaly() {
        assert_eq!(
            decide(&facts(OrderStatus::Expired), &paid()),
            Decision::Grant {
                credits: 3300,
                anomaly: Some("payment after timeout")
            }
        );
    }

    #[test]
    fn failure_and_cancellation_of_an_expired_order_are_recorded_and_keep_it_expired() {
        for kind in [EventKind::PaymentFailed, EventKind::Cancelled] {
            assert_eq!(
                decide(&facts(OrderStatus::Expired), &event(kind, "50", "USDT")),
                Decision::Record { anomaly: None },
                "{kind:?}"
            );
        }
    }

    #[test]
    fn an_expired_order_under_review_is_not_granted_automatically() {
        let mut order = facts(OrderStatus::Expired);
        order.under_review = true;
        assert!(matches!(
            decide(&order, &paid()),
            Decision::Record { anomaly: Some(_) }
        ));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [
            "pending",
            "paid",
            "completed",
            "failed",
            "cancelled",
            "expired",
        ] {
            assert_eq!(OrderStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(OrderStatus::parse("review").is_none());
    }
}
