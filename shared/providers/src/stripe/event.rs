//! A Stripe event (`{"id": "evt_..", "type": .., "data": {"object": ..}}`)
//! read into the domain: an [`OrderEvent`] for the payment events, a
//! [`PaymentReversal`] for refunds and disputes. After this, a Stripe
//! payment goes through the same state machine and ledger guards as a
//! Crossmint one.
//!
//! | Stripe event | order | meaning |
//! |---|---|---|
//! | `checkout.session.completed` | the session | paid when `payment_status` is `paid`, else informational (an async method still settling); a subscription's session (`mode` `subscription`) is informational: its first invoice pays the first period |
//! | `checkout.session.async_payment_succeeded` / `_failed` | the session | paid / failed |
//! | `checkout.session.expired` | the session | cancelled (money received still wins) |
//! | `invoice.paid`, `invoice.payment_succeeded` | the invoice | paid, when its metadata names a package; for a subscription's invoice (`parent.subscription_details.metadata` names our `planId`), one paid period of the plan, when raised for the subscription's start or renewal (`billing_reason` `subscription_create`, `subscription_cycle`; any other invoice of it is informational); else unknown |
//! | `invoice.payment_failed` | the invoice | failed, likewise |
//! | `charge.refunded` | by `payment_intent` | refund of the charge's refunded total |
//! | `charge.dispute.created`, `charge.dispute.funds_withdrawn` | by `payment_intent` | chargeback of the disputed amount, once per dispute (an inquiry, `warning_*`, withdraws nothing and takes nothing) |
//! | anything else | | unknown: recorded and acknowledged |
//!
//! Amounts are integers in the currency's minor unit (cents for USD) and
//! are read as integers, never through a float. The payment's
//! PaymentIntent travels with every payment event, so that whichever of a
//! session and its invoice arrives second finds the order the first one
//! paid, and refunds find it later.

use serde_json::Value;

use crate::fields::{reference, text_at};
use ledgerhook_domain::json;
use ledgerhook_domain::order_event::{MAX_ORDER_ID_LEN, plausible_email};
use ledgerhook_domain::{
    AmountError, EventKind, EventParseError, OrderEvent, PaymentClaim, PaymentProvider,
    PaymentReversal, ReversalKind, SubscriptionChange, SubscriptionPeriod, Usdt,
};

/// Longest Stripe id taken from an event (Stripe documents up to 255).
const MAX_STRIPE_ID_LEN: usize = 255;

/// What a Stripe event means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeEvent {
    /// A payment event (or an unknown type, recorded and acknowledged).
    Order(OrderEvent),
    /// Money given back: a refund or a dispute.
    Reversal(PaymentReversal),
    /// One of our subscriptions changed (its metadata names our plan).
    Subscription(SubscriptionChange),
}

impl StripeEvent {
    pub fn parse(body: &[u8]) -> Result<Self, EventParseError> {
        let Value::Object(mut envelope) = json::parse(body)? else {
            return Err(EventParseError::NotAnObject);
        };
        let event_type = match envelope.remove("type") {
            Some(Value::String(t)) if !t.trim().is_empty() => t,
            _ => return Err(EventParseError::MissingType),
        };
        let created = envelope.get("created").and_then(Value::as_i64);
        let object = envelope
            .remove("data")
            .and_then(|mut data| data.get_mut("object").map(Value::take))
            .filter(Value::is_object)
            .ok_or(EventParseError::Missing("data.object"))?;
        if event_type.starts_with("customer.subscription.")
            && reference(object.get("metadata"), "planId").is_some()
        {
            return subscription_change(event_type, created, &object);
        }
        let kind = match event_type.as_str() {
            "charge.refunded" => return reversal(ReversalKind::Refund, event_type, &object),
            // An inquiry (`warning_needs_response`, `warning_under_review`)
            // withdraws no money: recorded, nothing taken back until it
            // becomes a dispute (`charge.dispute.funds_withdrawn`).
            "charge.dispute.created"
                if text_at(&object, &["status"]).is_some_and(|s| s.starts_with("warning_")) =>
            {
                EventKind::Unknown
            }
            "charge.dispute.created" | "charge.dispute.funds_withdrawn" => {
                return reversal(ReversalKind::Chargeback, event_type, &object);
            }
            // A subscription's session is paid by its first invoice, which
            // is the period's order: the session itself grants nothing.
            "checkout.session.completed" | "checkout.session.async_payment_succeeded"
                if text_at(&object, &["mode"]) == Some("subscription") =>
            {
                EventKind::Informational
            }
            "checkout.session.completed" => {
                if text_at(&object, &["payment_status"]) == Some("paid") {
                    EventKind::PaymentSucceeded
                } else {
                    EventKind::Informational
                }
            }
            // A subscription's invoice is one paid period of our plan when
            // it starts or renews the subscription; a proration or any other
            // invoice of it grants nothing (a plan change takes effect at
            // the next renewal).
            "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed"
                if plan_of(&object).is_some()
                    && !matches!(
                        text_at(&object, &["billing_reason"]),
                        Some("subscription_create" | "subscription_cycle")
                    ) =>
            {
                EventKind::Informational
            }
            // Otherwise an invoice is about a credit package only when its
            // metadata names one (our API makes no one-off invoices; an
            // operator's invoice for a package carries `packageId`): any
            // other invoice on the account is recorded and left alone.
            "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed"
                if plan_of(&object).is_none()
                    && reference(object.get("metadata"), "packageId").is_none() =>
            {
                EventKind::Unknown
            }
            "checkout.session.async_payment_succeeded"
            | "invoice.paid"
            | "invoice.payment_succeeded" => EventKind::PaymentSucceeded,
            "checkout.session.async_payment_failed" | "invoice.payment_failed" => {
                EventKind::PaymentFailed
            }
            "checkout.session.expired" => EventKind::Cancelled,
            _ => EventKind::Unknown,
        };
        let order_id = match object.get("id") {
            Some(Value::String(id)) => id.trim().to_owned(),
            _ => return Err(EventParseError::Missing("data.object.id")),
        };
        if order_id.is_empty() || order_id.chars().count() > MAX_ORDER_ID_LEN {
            return Err(EventParseError::InvalidOrderId);
        }
        let is_invoice = event_type.starts_with("invoice.");
        let plan = is_invoice.then(|| plan_of(&object)).flatten();
        // A subscription's invoice carries our metadata on the
        // subscription's snapshot; any other object on itself.
        let metadata = match &plan {
            Some(plan) => Some(plan.metadata),
            None => object.get("metadata"),
        };
        let subscription = plan.as_ref().and_then(|plan| {
            let (period_start, period_end) = period_of(&object)?;
            Some(SubscriptionPeriod {
                subscription_id: plan.subscription_id.clone()?,
                period_start,
                period_end,
            })
        });
        let event = OrderEvent {
            provider: PaymentProvider::Stripe,
            kind,
            order_id,
            // Checkout's own field for "whose purchase this is" stands in.
            user_id: reference(metadata, "userId")
                .or_else(|| reference(Some(&object), "client_reference_id")),
            package_id: match &plan {
                Some(plan) => Some(plan.plan_id.clone()),
                None => reference(metadata, "packageId"),
            },
            payment: payment_claim(
                &object,
                if is_invoice {
                    "amount_paid"
                } else {
                    "amount_total"
                },
            ),
            failure_reason: None,
            buyer_email: [
                text_at(&object, &["customer_details", "email"]),
                text_at(&object, &["customer_email"]),
            ]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|address| plausible_email(address))
            .map(str::to_owned),
            payment_intent: payment_intent(&object),
            subscription,
            event_type,
        };
        event.refuse_nul()?;
        Ok(Self::Order(event))
    }
}

/// A subscription's state. Its current period sits on its items since API
/// version 2025-03-31 (basil), at the top before it.
fn subscription_change(
    event_type: String,
    created: Option<i64>,
    object: &Value,
) -> Result<StripeEvent, EventParseError> {
    let subscription_id =
        stripe_id(object.get("id")).ok_or(EventParseError::Missing("data.object.id"))?;
    let status = text_at(object, &["status"])
        .ok_or(EventParseError::Missing("data.object.status"))?
        .to_owned();
    let items = object
        .get("items")
        .and_then(|i| i.get("data"))
        .and_then(Value::as_array);
    let on_items = |field: &str| {
        items.and_then(|items| items.iter().filter_map(|i| i.get(field)?.as_i64()).max())
    };
    let period = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_i64)
            .or_else(|| on_items(field))
    };
    let metadata = object.get("metadata");
    let change = SubscriptionChange {
        subscription_id,
        customer_id: stripe_id(object.get("customer")),
        item_id: items.and_then(|items| stripe_id(items.first()?.get("id"))),
        product_id: items.and_then(|items| stripe_id(items.first()?.get("price")?.get("product"))),
        user_id: reference(metadata, "userId"),
        plan_id: reference(metadata, "planId"),
        status,
        current_period_start: period("current_period_start"),
        current_period_end: period("current_period_end"),
        cancel_at_period_end: object.get("cancel_at_period_end") == Some(&Value::Bool(true)),
        canceled_at: object.get("canceled_at").and_then(Value::as_i64),
        event_created: created.ok_or(EventParseError::Missing("created"))?,
        event_type,
    };
    let texts = [
        ("data.object.id", Some(change.subscription_id.as_str())),
        ("data.object.customer", change.customer_id.as_deref()),
        ("metadata.userId", change.user_id.as_deref()),
        ("metadata.planId", change.plan_id.as_deref()),
        ("data.object.status", Some(change.status.as_str())),
    ];
    if let Some((field, _)) = texts
        .into_iter()
        .find(|(_, text)| text.is_some_and(|t| t.contains('\0')))
    {
        return Err(EventParseError::ContainsNul(field));
    }
    Ok(StripeEvent::Subscription(change))
}

/// Where a subscription's invoice keeps the subscription's metadata: since
/// API version 2025-03-31 (basil) under `parent.subscription_details`,
/// before it at the top (`subscription_details`, with `subscription`).
struct SubscriptionInvoice<'a> {
    metadata: &'a Value,
    plan_id: String,
    subscription_id: Option<String>,
}

/// The plan a subscription's invoice is for, when its metadata names one
/// (ours does: the API puts `userId` and `planId` on every subscription).
fn plan_of(invoice: &Value) -> Option<SubscriptionInvoice<'_>> {
    let (details, subscription) = match invoice.get("parent") {
        Some(parent) if parent.get("subscription_details").is_some() => {
            let details = &parent["subscription_details"];
            (details, details.get("subscription"))
        }
        _ => (
            invoice.get("subscription_details")?,
            invoice.get("subscription"),
        ),
    };
    let metadata = details.get("metadata")?;
    Some(SubscriptionInvoice {
        plan_id: reference(Some(metadata), "planId")?,
        metadata,
        subscription_id: stripe_id(subscription),
    })
}

/// The period a subscription's invoice pays for: its lines' periods, from
/// the earliest start to the latest end (Unix seconds).
fn period_of(invoice: &Value) -> Option<(i64, i64)> {
    let lines = invoice.get("lines")?.get("data")?.as_array()?;
    let starts = lines
        .iter()
        .filter_map(|l| l.get("period")?.get("start")?.as_i64());
    let ends = lines
        .iter()
        .filter_map(|l| l.get("period")?.get("end")?.as_i64());
    Some((starts.min()?, ends.max()?))
}

/// The amount paid, in minor units, and its currency.
fn payment_claim(object: &Value, amount_field: &str) -> Option<PaymentClaim> {
    let amount = minor_units(object.get(amount_field)?)?;
    Some(PaymentClaim {
        amount,
        currency: currency(object),
        chain: None,
        transaction_hash: None,
    })
}

/// An integer amount in cents; anything else (a fraction, a string, an
/// object) is unusable, kept as an error for the state machine to hold.
fn minor_units(value: &Value) -> Option<Result<Usdt, AmountError>> {
    match value {
        Value::Null => None,
        Value::Number(number) => Some(
            number
                .as_i64()
                .map_or(Err(AmountError::NotDecimal), Usdt::from_cents),
        ),
        _ => Some(Err(AmountError::NotDecimal)),
    }
}

fn currency(object: &Value) -> Option<String> {
    text_at(object, &["currency"]).map(|c| c.trim().to_ascii_uppercase())
}

/// A Stripe id that may come as a string or, when expanded, an object
/// with an `id`.
fn stripe_id(value: Option<&Value>) -> Option<String> {
    let value = value?;
    let id = value
        .as_str()
        .or_else(|| value.get("id").and_then(Value::as_str))?
        .trim();
    (!id.is_empty() && id.chars().count() <= MAX_STRIPE_ID_LEN).then(|| id.to_owned())
}

/// The PaymentIntent that paid: a session's `payment_intent`; an
/// invoice's, since API version 2025-03-31 (basil), under
/// `payments.data[].payment.payment_intent`, and before it at the top.
fn payment_intent(object: &Value) -> Option<String> {
    stripe_id(object.get("payment_intent")).or_else(|| {
        object
            .get("payments")?
            .get("data")?
            .as_array()?
            .iter()
            .find_map(|payment| stripe_id(payment.get("payment")?.get("payment_intent")))
    })
}

fn reversal(
    kind: ReversalKind,
    event_type: String,
    object: &Value,
) -> Result<StripeEvent, EventParseError> {
    let payment_intent = stripe_id(object.get("payment_intent"))
        .ok_or(EventParseError::Missing("data.object.payment_intent"))?;
    let id = stripe_id(object.get("id")).ok_or(EventParseError::Missing("data.object.id"))?;
    let (amount_field, reference, reason) = match kind {
        // The charge's refunded total so far: the same total is the same
        // fact, whichever event reports it how often.
        ReversalKind::Refund => {
            let total = object.get("amount_refunded").and_then(Value::as_i64);
            let latest_reason = object
                .get("refunds")
                .and_then(|r| r.get("data"))
                .and_then(Value::as_array)
                .and_then(|refunds| refunds.first())
                .and_then(|refund| text_at(refund, &["reason"]));
            (
                "amount_refunded",
                format!("{id}:{}", total.map_or("?".to_owned(), |t| t.to_string())),
                latest_reason,
            )
        }
        ReversalKind::Chargeback => ("amount", id, text_at(object, &["reason"])),
    };
    let amount = object
        .get(amount_field)
        .and_then(minor_units)
        .unwrap_or(Err(AmountError::Empty));
    let reversal = PaymentReversal {
        kind,
        event_type,
        payment_intent,
        reference,
        amount,
        currency: currency(object),
        reason: reason.map(str::to_owned),
    };
    let texts = [
        Some(&reversal.event_type),
        Some(&reversal.payment_intent),
        Some(&reversal.reference),
        reversal.currency.as_ref(),
        reversal.reason.as_ref(),
    ];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(EventParseError::ContainsNul("reversal"));
    }
    Ok(StripeEvent::Reversal(reversal))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOADS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/payloads/stripe");

    fn example(name: &str) -> StripeEvent {
        let body = std::fs::read(format!("{PAYLOADS}/{name}.json")).unwrap();
        StripeEvent::parse(&body).unwrap()
    }

    fn order(name: &str) -> OrderEvent {
        match example(name) {
            StripeEvent::Order(event) => event,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn reversal_of(name: &str) -> PaymentReversal {
        match example(name) {
            StripeEvent::Reversal(reversal) => reversal,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn a_paid_checkout_session_is_a_payment_in_usd_cents() {
        let event = order("checkout.session.completed");
        assert_eq!(event.provider, PaymentProvider::Stripe);
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.order_id, "cs_test_a1LedgerhookProSession01");
        assert_eq!(
            event.user_id.as_deref(),
            Some("user_01HZX3K9Q2W8E7R6T5Y4U3I2O1")
        );
        assert_eq!(event.package_id.as_deref(), Some("pro"));
        let payment = event.payment.unwrap();
        assert_eq!(payment.amount, Ok(Usdt::from_whole(50)));
        assert_eq!(payment.currency.as_deref(), Some("USD"));
        assert_eq!(
            event.payment_intent.as_deref(),
            Some("pi_3QxLedgerhookPro01")
        );
        assert_eq!(event.buyer_email.as_deref(), Some("buyer@example.com"));
    }

    #[test]
    fn async_outcomes_and_an_unpaid_completion() {
        assert_eq!(
            order("checkout.session.async_payment_succeeded").kind,
            EventKind::PaymentSucceeded
        );
        assert_eq!(
            order("checkout.session.async_payment_failed").kind,
            EventKind::PaymentFailed
        );
        let body = br#"{"id":"evt_1","type":"checkout.session.completed","data":{"object":{"id":"cs_1","payment_status":"unpaid","amount_total":5000,"currency":"usd"}}}"#;
        let StripeEvent::Order(event) = StripeEvent::parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(
            event.kind,
            EventKind::Informational,
            "a bank debit still settling is not money received"
        );
    }

    #[test]
    fn an_invoice_pays_with_its_basil_payment_intent() {
        let event = order("invoice.paid");
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.order_id, "in_1QxLedgerhookStarter01");
        assert_eq!(event.package_id.as_deref(), Some("starter"));
        assert_eq!(event.payment.unwrap().amount, Ok(Usdt::from_whole(10)));
        assert_eq!(
            event.payment_intent.as_deref(),
            Some("pi_3QxLedgerhookInvoice01")
        );
        assert_eq!(
            order("invoice.payment_failed").kind,
            EventKind::PaymentFailed
        );
        // Before basil, the intent sat at the top of the invoice.
        let body = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1","amount_paid":1000,"currency":"usd","payment_intent":{"id":"pi_old"}}}}"#;
        let StripeEvent::Order(event) = StripeEvent::parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(event.payment_intent.as_deref(), Some("pi_old"));
    }

    #[test]
    fn refunds_carry_the_refunded_total_and_disputes_their_amount() {
        let refund = reversal_of("charge.refunded");
        assert_eq!(refund.kind, ReversalKind::Refund);
        assert_eq!(refund.payment_intent, "pi_3QxLedgerhookPro01");
        assert_eq!(refund.amount, Ok(Usdt::from_cents(2500).unwrap()));
        assert_eq!(refund.reference, "ch_3QxLedgerhookPro01:2500");
        assert_eq!(refund.reason.as_deref(), Some("requested_by_customer"));
        let dispute = reversal_of("charge.dispute.created");
        assert_eq!(dispute.kind, ReversalKind::Chargeback);
        assert_eq!(dispute.reference, "dp_1QxLedgerhookPro01");
        assert_eq!(dispute.amount, Ok(Usdt::from_whole(50)));
        assert_eq!(dispute.currency.as_deref(), Some("USD"));
    }

    #[test]
    fn a_subscriptions_invoice_is_one_paid_period_of_its_plan() {
        let event = order("invoice.paid.subscription");
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(event.order_id, "in_1QxLedgerhookSubMonthly01");
        assert_eq!(event.package_id.as_deref(), Some("monthly"));
        assert_eq!(
            event.user_id.as_deref(),
            Some("user_01HZX3K9Q2W8E7R6T5Y4U3SUB1")
        );
        assert_eq!(
            event.subscription,
            Some(SubscriptionPeriod {
                subscription_id: "sub_1QxLedgerhookMonthly01".into(),
                period_start: 1_765_100_000,
                period_end: 1_767_778_400,
            })
        );
        assert_eq!(
            event.payment_intent.as_deref(),
            Some("pi_3QxLedgerhookSubMonthly01")
        );
        assert_eq!(event.buyer_email.as_deref(), Some("subscriber@example.com"));

        // A proration, or any invoice other than a start or a renewal,
        // grants nothing.
        let body = std::fs::read(format!("{PAYLOADS}/invoice.paid.subscription.json")).unwrap();
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        value["data"]["object"]["billing_reason"] = "subscription_update".into();
        let StripeEvent::Order(event) =
            StripeEvent::parse(&serde_json::to_vec(&value).unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(event.kind, EventKind::Informational);
        // Before basil the subscription's metadata sat at the top.
        value["data"]["object"]["billing_reason"] = "subscription_cycle".into();
        let parent = value["data"]["object"]["parent"]["subscription_details"].take();
        value["data"]["object"]["subscription_details"] =
            serde_json::json!({"metadata": parent["metadata"]});
        value["data"]["object"]["subscription"] = parent["subscription"].clone();
        value["data"]["object"]["parent"] = Value::Null;
        let StripeEvent::Order(event) =
            StripeEvent::parse(&serde_json::to_vec(&value).unwrap()).unwrap()
        else {
            panic!()
        };
        assert_eq!(event.kind, EventKind::PaymentSucceeded);
        assert_eq!(
            event.subscription.map(|s| s.subscription_id).as_deref(),
            Some("sub_1QxLedgerhookMonthly01")
        );
    }

    #[test]
    fn a_subscription_change_is_read_and_a_nul_in_it_refused() {
        let body = std::fs::read(format!("{PAYLOADS}/customer.subscription.updated.json")).unwrap();
        let StripeEvent::Subscription(change) = StripeEvent::parse(&body).unwrap() else {
            panic!()
        };
        assert_eq!(change.subscription_id, "sub_1QxLedgerhookMonthly01");
        assert_eq!(change.plan_id.as_deref(), Some("monthly"));
        assert_eq!(change.status, "active");
        assert_eq!(
            change.current_period_end,
            Some(1_767_778_400),
            "from the items (basil)"
        );
        assert_eq!(change.item_id.as_deref(), Some("si_QxLedgerhookMonthly01"));
        assert_eq!(
            change.product_id.as_deref(),
            Some("prod_QxLedgerhookMonthly01")
        );
        assert_eq!(change.event_created, 1_765_100_100);
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        value["data"]["object"]["metadata"]["userId"] = "u\u{0}x".into();
        assert_eq!(
            StripeEvent::parse(&serde_json::to_vec(&value).unwrap()),
            Err(EventParseError::ContainsNul("metadata.userId"))
        );
    }

    #[test]
    fn invoices_for_no_package_and_dispute_inquiries_are_left_alone() {
        let body = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_sub","amount_paid":900,"currency":"usd","metadata":{}}}}"#;
        let StripeEvent::Order(event) = StripeEvent::parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(event.kind, EventKind::Unknown, "an invoice not of ours");
        let body = br#"{"id":"evt_2","type":"charge.dispute.created","data":{"object":{"id":"dp_1","payment_intent":"pi_1","amount":5000,"currency":"usd","status":"warning_needs_response"}}}"#;
        assert!(
            matches!(StripeEvent::parse(body).unwrap(), StripeEvent::Order(e) if e.kind == EventKind::Unknown),
            "an inquiry withdraws no money"
        );
        let body = br#"{"id":"evt_3","type":"charge.dispute.funds_withdrawn","data":{"object":{"id":"dp_1","payment_intent":"pi_1","amount":5000,"currency":"usd","status":"needs_response"}}}"#;
        assert!(matches!(
            StripeEvent::parse(body).unwrap(),
            StripeEvent::Reversal(r) if r.reference == "dp_1"
        ));
    }

    #[test]
    fn other_types_are_unknown_and_kept() {
        let event = order("customer.created");
        assert_eq!(event.kind, EventKind::Unknown);
        assert_eq!(event.event_type, "customer.created");
    }

    #[test]
    fn amounts_are_integers_or_unusable_never_rounded() {
        for amount in ["5000.0", "4999.9999999999999999", "\"5000\"", "1e400"] {
            let body = format!(
                r#"{{"id":"evt_1","type":"invoice.paid","data":{{"object":{{"id":"in_1","amount_paid":{amount},"currency":"usd"}}}}}}"#
            );
            let StripeEvent::Order(event) = StripeEvent::parse(body.as_bytes()).unwrap() else {
                panic!()
            };
            assert!(
                event.payment.unwrap().amount.is_err(),
                "{amount} must not become 50 dollars"
            );
        }
    }

    #[test]
    fn unreadable_events_say_why() {
        let cases: [(&[u8], EventParseError); 5] = [
            (b"[]", EventParseError::NotAnObject),
            (br#"{"data":{"object":{}}}"#, EventParseError::MissingType),
            (
                br#"{"type":"invoice.paid","data":{}}"#,
                EventParseError::Missing("data.object"),
            ),
            (
                br#"{"type":"invoice.paid","data":{"object":{"amount_paid":1}}}"#,
                EventParseError::Missing("data.object.id"),
            ),
            (
                br#"{"type":"charge.refunded","data":{"object":{"id":"ch_1","amount_refunded":1}}}"#,
                EventParseError::Missing("data.object.payment_intent"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                StripeEvent::parse(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_on_bytes(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = StripeEvent::parse(&body);
        }
    }
}
