//! Reconcile for Stripe: the same promise as Crossmint's (a payment whose
//! webhook never came is found and granted once, through the workers),
//! from two sources:
//! - the events Stripe failed to deliver to us (`delivery_success=false`,
//!   kept 30 days), each recorded under its own event id, exactly as its
//!   webhook would have been: a webhook that arrives after all is then a
//!   duplicate delivery, and one that had arrived makes this one so;
//! - Stripe orders still waiting for their payment: their Checkout
//!   Session, asked for; a paid one is recorded as the
//!   `checkout.session.completed` it would have sent (delivery id
//!   `reconcile:<session id>`), so the order grants once whichever comes.

use chrono::Utc;
use ledgerhook_domain::{PaymentProvider, Provider};
use ledgerhook_providers::stripe::reads::StripeReads;
use ledgerhook_store::ledger::orders::{self, AwaitingPayment};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{Finding, FindingResult, Only, Recording, Run, Scope, record};

/// How far back Stripe keeps events.
const EVENTS_KEPT_SECS: i64 = 30 * 24 * 3600;
/// What `verified_by` says: no signature, the answer came over TLS from
/// Stripe's API, asked with our secret key.
const FROM_EVENTS: &str = "stripe-events-api";
const FROM_SESSIONS: &str = "stripe-checkout-api";

/// What reconcile did with one event Stripe could not deliver.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFinding {
    pub event_id: String,
    pub event_type: String,
    pub result: FindingResult,
}

/// One run for Stripe: undelivered events (unless one order is asked
/// about), then the orders in `scope`.
pub async fn run(
    pool: &PgPool,
    stripe: &StripeReads,
    scope: Scope,
    only: Only<'_>,
) -> Result<Run, sqlx::Error> {
    let mut run = Run::default();
    // Sessions whose own event this run found: asking for them again would
    // only record the same payment twice (harmless, but a duplicate).
    let mut sessions_in_events = std::collections::HashSet::new();
    if only.order.is_none() {
        let since = Utc::now().timestamp() - EVENTS_KEPT_SECS;
        let limit = usize::try_from(scope.limit).unwrap_or(usize::MAX);
        match stripe.undelivered_events(since, limit).await {
            Ok(events) => {
                for event in events {
                    if event.event_type.starts_with("checkout.session.") {
                        let object = serde_json::from_slice::<Value>(&event.body)
                            .ok()
                            .and_then(|e| e["data"]["object"]["id"].as_str().map(str::to_owned));
                        sessions_in_events.extend(object);
                    }
                    let recording = Recording {
                        provider: Provider::Stripe,
                        delivery_id: event.id.clone(),
                        body: event.body,
                        headers: "[]".to_owned(),
                        verified_by: FROM_EVENTS,
                    };
                    let result = record(pool, recording, only.dry_run, &mut run.recorded).await?;
                    run.events.push(EventFinding {
                        event_id: event.id,
                        event_type: event.event_type,
                        result,
                    });
                }
            }
            Err(e) => run.events_error = Some(format!("{e:#}")),
        }
    }
    let candidates = orders::awaiting_payment(
        pool,
        PaymentProvider::Stripe,
        scope.older_than,
        scope.within,
        scope.limit,
        only.order,
    )
    .await?;
    for order in candidates {
        if sessions_in_events.contains(&order.provider_order_id) {
            run.findings.push(found_in_events(order));
            continue;
        }
        let finding = session_of(pool, stripe, order, only.dry_run, &mut run.recorded).await?;
        run.findings.push(finding);
    }
    Ok(run)
}

/// An order whose session's event was among the undelivered ones: that
/// event is its payment, recorded (or, in a dry run, to be) above.
fn found_in_events(order: AwaitingPayment) -> Finding {
    Finding {
        result: FindingResult::AlreadyRecorded,
        detail: Some("its session's event was among Stripe's undelivered ones".to_owned()),
        ..Finding::about(PaymentProvider::Stripe, order)
    }
}

async fn session_of(
    pool: &PgPool,
    stripe: &StripeReads,
    order: AwaitingPayment,
    dry_run: bool,
    recorded: &mut Vec<ledgerhook_domain::Delivery>,
) -> Result<Finding, sqlx::Error> {
    let mut finding = Finding::about(PaymentProvider::Stripe, order);
    let session = match stripe.checkout_session(&finding.provider_order_id).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            finding.detail = Some("Stripe has no Checkout Session by this id".to_owned());
            return Ok(finding);
        }
        Err(e) => {
            finding.detail = Some(format!("{e:#}"));
            return Ok(finding);
        }
    };
    let Ok(session) = serde_json::from_slice::<Value>(&session) else {
        finding.detail = Some("Stripe's answer could not be read".to_owned());
        return Ok(finding);
    };
    if session["id"].as_str() != Some(finding.provider_order_id.as_str()) {
        finding.detail = Some("Stripe answered about another session".to_owned());
        return Ok(finding);
    }
    let payment_status = session["payment_status"].as_str().unwrap_or("unknown");
    finding.stripe_payment_status = Some(payment_status.to_owned());
    // `no_payment_required` is a session for nothing to pay: not ours.
    if payment_status != "paid" {
        finding.result = FindingResult::NotPaid;
        return Ok(finding);
    }
    let delivery_id = format!("reconcile:{}", finding.provider_order_id);
    let event = json!({
        "id": delivery_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": Utc::now().timestamp(),
        "data": {"object": session},
    });
    let recording = Recording {
        provider: Provider::Stripe,
        delivery_id,
        body: serde_json::to_vec(&event).expect("a JSON value serialises"),
        headers: "[]".to_owned(),
        verified_by: FROM_SESSIONS,
    };
    finding.result = record(pool, recording, dry_run, recorded).await?;
    Ok(finding)
}
