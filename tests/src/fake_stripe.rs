//! A stand-in for Stripe that tests (and `FAKE_STRIPE=1 deploy/run.sh`)
//! start on a port of their own: it answers `POST /v1/checkout/sessions` as
//! Stripe does (a form-encoded body, the secret key as a Bearer token, a
//! repeated `Idempotency-Key` answered with what it first answered, a 500
//! included, the same key with other parameters refused), keeps every
//! request it saw, and can be told to fail (500 with Stripe's error object)
//! or to hang.
//!
//! It also plays Stripe's side of the payment: [`FakeStripe::pay`] sends a
//! signed `checkout.session.completed` to the webhook URL it was given (the
//! ingester's `/webhooks/stripe`), as does opening a session's `url`
//! (`GET /c/pay/{id}`, for a person trying the demo); [`FakeStripe::refund`]
//! and [`FakeStripe::dispute`] send `charge.refunded` (with the cumulative
//! `amount_refunded`, as Stripe does) and `charge.dispute.created` for a
//! paid session's PaymentIntent. It keeps every event it made, with whether
//! the webhook took it (a 2xx), and answers `GET /v1/events` (with
//! `delivery_success=false`, as reconcile asks) and
//! `GET /v1/checkout/sessions/{id}` from them. Plain HTTP only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledgerhook_providers::stripe::signature::sign;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The secret key the fake accepts; visibly not a real one.
pub const FAKE_SECRET_KEY: &str = "sk_test_fake-key-for-tests";
/// The webhook signing secret the fake signs with unless told otherwise.
pub const FAKE_WEBHOOK_SECRET: &str = "whsec_fake-stripe-signing-secret-for-tests";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Answer,
    /// 500 with Stripe's error object (`api_error`).
    Fail,
    /// Never answers within any sane timeout.
    Hang,
}

/// One create request as received.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub content_type: Option<String>,
    pub idempotency_key: Option<String>,
    /// The decoded form fields, in order.
    pub form: Vec<(String, String)>,
}

impl SeenRequest {
    /// The value of form field `name` (`metadata[userId]`, ...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where and how events are sent.
#[derive(Debug, Clone)]
struct Webhook {
    url: String,
    secret: String,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Value>,
    /// Idempotency-Key -> the form it came with, and what was answered.
    by_key: HashMap<String, (Vec<(String, String)>, Saved)>,
    /// Cents refunded so far, by session.
    refunded: HashMap<String, i64>,
}

/// What Stripe keeps of a keyed request and replays for 24 hours: its
/// session, or its server error (Stripe replays a 500 too).
#[derive(Clone)]
enum Saved {
    Session(String),
    ServerError,
}

#[derive(Clone)]
struct Shared {
    base_url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    sessions: Arc<Mutex<Sessions>>,
    webhook: Arc<Mutex<Option<Webhook>>>,
    /// Every event made, newest last, and whether its webhook got a 2xx.
    events: Arc<Mutex<Vec<(Value, bool)>>>,
    /// PaymentIntent -> the invoice it paid (`GET /v1/invoice_payments`).
    invoice_payments: Arc<Mutex<HashMap<String, String>>>,
    /// Subscriptions made by paying their sessions, as Stripe holds them.
    subscriptions: Arc<Mutex<HashMap<String, Value>>>,
    http: reqwest::Client,
}

pub struct FakeStripe {
    /// What `STRIPE_API_URL` should be.
    pub api_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeStripe {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let api_url = format!("http://{}", listener.local_addr()?);
        let shared = Shared {
            base_url: api_url.clone(),
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            requests: Arc::new(Mutex::new(Vec::new())),
            sessions: Arc::new(Mutex::new(Sessions::default())),
            webhook: Arc::new(Mutex::new(None)),
            events: Arc::new(Mutex::new(Vec::new())),
            invoice_payments: Arc::new(Mutex::new(HashMap::new())),
            subscriptions: Arc::new(Mutex::new(HashMap::new())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        };
        let app = Router::new()
            .route("/v1/checkout/sessions", post(create_session))
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/events", get(list_events))
            .route("/v1/billing_portal/sessions", post(portal_session))
            .route("/v1/invoice_payments", get(list_invoice_payments))
            .route("/v1/subscriptions/{id}", post(update_subscription))
            .route("/c/pay/{id}", get(pay_page))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            api_url,
            shared,
            task,
        })
    }

    /// Events go to `url` (the ingester's `/webhooks/stripe`), signed with
    /// `secret`.
    pub fn send_events_to(&self, url: &str, secret: &str) {
        *self.shared.webhook.lock().expect("lock") = Some(Webhook {
            url: url.to_owned(),
            secret: secret.to_owned(),
        });
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    /// The create-session requests received so far (a replayed
    /// Idempotency-Key included).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.requests.lock().expect("lock").clone()
    }

    /// How many distinct sessions were created.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.lock().expect("lock").by_id.len()
    }

    /// The session as the fake holds it, if it made it.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.shared
            .sessions
            .lock()
            .expect("lock")
            .by_id
            .get(id)
            .cloned()
    }

    /// Marks the session paid and sends `checkout.session.completed`; the
    /// webhook's HTTP status.
    pub async fn pay(&self, session_id: &str) -> anyhow::Result<u16> {
        pay_session(&self.shared, session_id).await
    }

    /// Pays a subscription-mode session as Stripe does: the subscription
    /// is created (`customer.subscription.created`), its first invoice is
    /// paid (`invoice.paid`, `billing_reason` `subscription_create`, the
    /// subscription's metadata under `parent.subscription_details`), and
    /// the session completes; the subscription's id. Each event goes to
    /// the webhook URL.
    pub async fn pay_subscription(&self, session_id: &str) -> anyhow::Result<String> {
        let session = {
            let mut sessions = self.shared.sessions.lock().expect("lock");
            let session = sessions
                .by_id
                .get_mut(session_id)
                .with_context(|| format!("the fake made no session {session_id}"))?;
            if session["mode"] != "subscription" {
                bail!("session {session_id} is not a subscription's");
            }
            session["payment_status"] = json!("paid");
            session["status"] = json!("complete");
            session["subscription"] = json!(format!("sub_{}", simple_id()));
            session["customer"] = json!(format!("cus_{}", simple_id()));
            session["url"] = Value::Null;
            session.clone()
        };
        let subscription = session["subscription"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let now = chrono::Utc::now().timestamp();
        let state = json!({
            "id": subscription, "object": "subscription", "status": "active",
            "customer": session["customer"], "metadata": session["subscription_metadata"],
            "cancel_at_period_end": false, "canceled_at": null,
            "items": {"object": "list", "data": [{
                "id": format!("si_{}", simple_id()), "object": "subscription_item",
                "current_period_start": now, "current_period_end": now,
                "price": {"id": format!("price_{}", simple_id()), "object": "price",
                          "product": format!("prod_{}", simple_id()),
                          "unit_amount": session["amount_total"],
                          "recurring": {"interval": session["interval"]}},
            }]},
        });
        self.shared
            .subscriptions
            .lock()
            .expect("lock")
            .insert(subscription.clone(), state);
        self.bill(
            &subscription,
            "subscription_create",
            "customer.subscription.created",
        )
        .await?;
        send_event(&self.shared, "checkout.session.completed", session).await?;
        Ok(subscription)
    }

    /// Renews a subscription: its next period, billed at its price now
    /// and with its metadata now (`invoice.paid`, `subscription_cycle`).
    pub async fn renew(&self, subscription: &str) -> anyhow::Result<()> {
        self.bill(
            subscription,
            "subscription_cycle",
            "customer.subscription.updated",
        )
        .await
    }

    /// Moves the subscription into its next period and sends its state
    /// (`state_event`) and its paid invoice.
    async fn bill(
        &self,
        subscription: &str,
        reason: &str,
        state_event: &str,
    ) -> anyhow::Result<()> {
        let state = {
            let mut subscriptions = self.shared.subscriptions.lock().expect("lock");
            let state = subscriptions
                .get_mut(subscription)
                .with_context(|| format!("the fake has no subscription {subscription}"))?;
            let item = &mut state["items"]["data"][0];
            let start = item["current_period_end"].as_i64().unwrap_or_default();
            let days = if item["price"]["recurring"]["interval"] == "year" {
                365
            } else {
                30
            };
            item["current_period_start"] = json!(start);
            item["current_period_end"] = json!(start + days * 24 * 3600);
            state.clone()
        };
        send_event(&self.shared, state_event, state.clone()).await?;
        let item = &state["items"]["data"][0];
        let amount = &item["price"]["unit_amount"];
        let invoice = format!("in_{}", simple_id());
        send_event(
            &self.shared,
            "invoice.paid",
            json!({
                "id": invoice, "object": "invoice", "status": "paid",
                "billing_reason": reason,
                "amount_due": amount, "amount_paid": amount, "total": amount, "currency": "usd",
                "customer": state["customer"], "metadata": {},
                "parent": {"type": "subscription_details", "quote_details": null,
                    "subscription_details": {"metadata": state["metadata"], "subscription": subscription}},
                "lines": {"object": "list", "data": [{
                    "id": format!("il_{}", simple_id()), "object": "line_item",
                    "amount": amount, "currency": "usd",
                    "period": {"start": item["current_period_start"], "end": item["current_period_end"]},
                }]},
                "payments": {"object": "list", "data": [{
                    "object": "invoice_payment", "status": "paid",
                    "amount_paid": amount, "currency": "usd",
                    "payment": {"type": "payment_intent",
                                "payment_intent": format!("pi_{}", simple_id())},
                }]},
            }),
        )
        .await?;
        Ok(())
    }

    /// Records that `payment_intent` paid `invoice`, as Stripe's invoice
    /// payments list it.
    pub fn record_invoice_payment(&self, invoice: &str, payment_intent: &str) {
        self.shared
            .invoice_payments
            .lock()
            .expect("lock")
            .insert(payment_intent.to_owned(), invoice.to_owned());
    }

    /// Marks the session paid and makes no event at all (as if it had gone
    /// to another endpoint, or long ago): only the session tells.
    pub fn pay_without_event(&self, session_id: &str) -> anyhow::Result<()> {
        let mut sessions = self.shared.sessions.lock().expect("lock");
        let session = sessions
            .by_id
            .get_mut(session_id)
            .with_context(|| format!("the fake made no session {session_id}"))?;
        mark_paid(session);
        Ok(())
    }

    /// Refunds `cents` more of a paid session and sends `charge.refunded`
    /// with the charge's cumulative `amount_refunded` (`refunded: true`
    /// once all of it is); the webhook's HTTP status.
    pub async fn refund(&self, session_id: &str, cents: i64) -> anyhow::Result<u16> {
        let (session, refunded) = {
            let mut sessions = self.shared.sessions.lock().expect("lock");
            let session = paid_session(&sessions, session_id)?;
            let total = sessions.refunded.entry(session_id.to_owned()).or_insert(0);
            *total += cents;
            (session, *total)
        };
        let amount = session["amount_total"].as_i64().unwrap_or(0);
        let intent = &session["payment_intent"];
        let charge = json!({
            "id": charge_id(&session),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": refunded,
            "captured": true,
            "currency": "usd",
            "paid": true,
            "payment_intent": intent,
            "refunded": refunded >= amount,
            "status": "succeeded",
            "metadata": {},
        });
        send_event(&self.shared, "charge.refunded", charge).await
    }

    /// Opens a dispute (chargeback) on a paid session's charge and sends
    /// `charge.dispute.created`; the webhook's HTTP status.
    pub async fn dispute(&self, session_id: &str) -> anyhow::Result<u16> {
        let session = paid_session(&self.shared.sessions.lock().expect("lock"), session_id)?;
        let dispute = json!({
            "id": format!("dp_{}", simple_id()),
            "object": "dispute",
            "amount": session["amount_total"],
            "charge": charge_id(&session),
            "currency": "usd",
            "payment_intent": session["payment_intent"],
            "reason": "fraudulent",
            "status": "needs_response",
            "created": chrono::Utc::now().timestamp(),
            "metadata": {},
        });
        send_event(&self.shared, "charge.dispute.created", dispute).await
    }

    /// Serves until the process ends (for the standalone binary).
    pub async fn serve_forever(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn simple_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The charge of a paid session: derived from its PaymentIntent, so every
/// event about one payment names the same charge.
fn charge_id(session: &Value) -> String {
    let intent = session["payment_intent"].as_str().unwrap_or_default();
    format!("ch_{}", intent.trim_start_matches("pi_"))
}

fn paid_session(sessions: &Sessions, session_id: &str) -> anyhow::Result<Value> {
    let session = sessions
        .by_id
        .get(session_id)
        .with_context(|| format!("the fake made no session {session_id}"))?;
    if session["payment_status"] != "paid" {
        bail!("session {session_id} is not paid");
    }
    Ok(session.clone())
}

async fn pay_session(shared: &Shared, session_id: &str) -> anyhow::Result<u16> {
    let session = {
        let mut sessions = shared.sessions.lock().expect("lock");
        let session = sessions
            .by_id
            .get_mut(session_id)
            .with_context(|| format!("the fake made no session {session_id}"))?;
        mark_paid(session);
        session.clone()
    };
    send_event(shared, "checkout.session.completed", session).await
}

fn mark_paid(session: &mut Value) {
    if session["payment_status"] != "paid" {
        session["payment_status"] = json!("paid");
        session["status"] = json!("complete");
        session["payment_intent"] = json!(format!("pi_{}", simple_id()));
        session["url"] = Value::Null;
    }
}

/// Sends one event, signed as Stripe signs it, and returns the status.
async fn send_event(shared: &Shared, kind: &str, object: Value) -> anyhow::Result<u16> {
    let webhook = shared
        .webhook
        .lock()
        .expect("lock")
        .clone()
        .context("the fake Stripe has no webhook URL (send_events_to)")?;
    let created = chrono::Utc::now().timestamp();
    let event = json!({
        "id": format!("evt_{}", simple_id()),
        "object": "event",
        "api_version": "2026-03-25",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
        "data": {"object": object},
    });
    let body = serde_json::to_vec(&event)?;
    let index = {
        let mut events = shared.events.lock().expect("lock");
        events.push((event, false));
        events.len() - 1
    };
    let response = shared
        .http
        .post(&webhook.url)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", sign(&webhook.secret, created, &body))
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .body(body)
        .send()
        .await
        .context("sending the event to the webhook URL")?;
    if response.status().is_success() {
        shared.events.lock().expect("lock")[index].1 = true;
    }
    Ok(response.status().as_u16())
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {FAKE_SECRET_KEY}").as_str())
}

async fn get_session(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    match shared.sessions.lock().expect("lock").by_id.get(&id) {
        Some(session) => Json(session.clone()).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "No such checkout.session",
        ),
    }
}

/// `GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_...`.
async fn list_invoice_payments(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let intent = query
        .get("payment[payment_intent]")
        .cloned()
        .unwrap_or_default();
    let invoice = shared
        .invoice_payments
        .lock()
        .expect("lock")
        .get(&intent)
        .cloned();
    let data: Vec<Value> = invoice
        .map(|invoice| {
            json!({"id": format!("inpay_{}", simple_id()), "object": "invoice_payment",
                   "invoice": invoice, "status": "paid",
                   "payment": {"type": "payment_intent", "payment_intent": intent}})
        })
        .into_iter()
        .collect();
    Json(json!({"object": "list", "url": "/v1/invoice_payments", "has_more": false, "data": data}))
        .into_response()
}

/// `POST /v1/subscriptions/{id}`: the item's price and the metadata, as
/// the plan change sends them; `customer.subscription.updated` follows.
async fn update_subscription(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if !authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let form = parse_form(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let state = {
        let mut subscriptions = shared.subscriptions.lock().expect("lock");
        let Some(state) = subscriptions.get_mut(&id) else {
            return stripe_error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "No such subscription",
            );
        };
        let item = &mut state["items"]["data"][0];
        if field("items[0][id]").as_deref() != item["id"].as_str()
            || field("items[0][price_data][product]").as_deref()
                != item["price"]["product"].as_str()
        {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "No such item or product",
            );
        }
        let amount: i64 = field("items[0][price_data][unit_amount]")
            .and_then(|a| a.parse().ok())
            .unwrap_or_default();
        item["price"]["unit_amount"] = json!(amount);
        item["price"]["recurring"]["interval"] =
            json!(field("items[0][price_data][recurring][interval]"));
        if let Some(plan) = field("metadata[planId]") {
            state["metadata"]["planId"] = json!(plan);
        }
        state.clone()
    };
    let _ = send_event(&shared, "customer.subscription.updated", state.clone()).await;
    Json(state).into_response()
}

/// `POST /v1/billing_portal/sessions`: a portal URL for the customer.
async fn portal_session(headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let form = parse_form(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (Some(customer), Some(return_url)) = (field("customer"), field("return_url")) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Missing required param: customer.",
        );
    };
    let id = format!("bps_{}", simple_id());
    Json(json!({
        "id": id,
        "object": "billing_portal.session",
        "customer": customer,
        "return_url": return_url,
        "url": format!("https://billing.stripe.example/p/session/{id}"),
    }))
    .into_response()
}

/// `GET /v1/events`: newest first, `delivery_success` and `starting_after`
/// and `limit` as Stripe reads them (`created[gte]` is not needed here:
/// the fake's events are all recent).
async fn list_events(
    State(shared): State<Shared>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let delivered = query.get("delivery_success").map(|v| v == "true");
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let events = shared.events.lock().expect("lock").clone();
    let mut matching = events
        .iter()
        .rev()
        .filter(|(_, ok)| delivered.is_none_or(|wanted| *ok == wanted))
        .map(|(event, _)| event.clone())
        .skip_while(|event| {
            query
                .get("starting_after")
                .is_some_and(|after| event["id"] != json!(after))
        })
        .skip(usize::from(query.contains_key("starting_after")))
        .collect::<Vec<_>>();
    let has_more = matching.len() > limit;
    matching.truncate(limit);
    Json(json!({"object": "list", "url": "/v1/events", "has_more": has_more, "data": matching}))
        .into_response()
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

async fn create_session(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("authorization").as_deref() != Some(&format!("Bearer {FAKE_SECRET_KEY}")) {
        // Stripe names a wrong key only by its last characters; never echo it.
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided",
        );
    }
    let seen = SeenRequest {
        content_type: header("content-type"),
        idempotency_key: header("idempotency-key"),
        form: parse_form(&body),
    };
    shared.requests.lock().expect("lock").push(seen.clone());
    if let Some(key) = &seen.idempotency_key {
        let sessions = shared.sessions.lock().expect("lock");
        if let Some((form, saved)) = sessions.by_key.get(key) {
            return replay(&sessions, &seen.form, form, saved);
        }
    }
    let behaviour = *shared.behaviour.lock().expect("lock");
    match behaviour {
        Behaviour::Fail => {
            if let Some(key) = seen.idempotency_key {
                let mut sessions = shared.sessions.lock().expect("lock");
                sessions.by_key.insert(key, (seen.form, Saved::ServerError));
            }
            return server_error();
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Behaviour::Answer => {}
    }
    if seen.content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "Stripe takes form-encoded bodies",
        );
    }
    let session = match new_session(&shared.base_url, &seen) {
        Ok(session) => session,
        // A refused request is not kept: it may be retried with the key.
        Err(message) => {
            return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
    };
    let id = session["id"].as_str().expect("made above").to_owned();
    let mut sessions = shared.sessions.lock().expect("lock");
    if let Some(key) = seen.idempotency_key {
        sessions
            .by_key
            .insert(key, (seen.form, Saved::Session(id.clone())));
    }
    sessions.by_id.insert(id, session.clone());
    Json(session).into_response()
}

fn server_error() -> Response {
    stripe_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "api_error",
        "An unknown error occurred",
    )
}

/// A repeated Idempotency-Key: the first answer again, or a refusal when
/// the parameters differ from the first request's.
fn replay(
    sessions: &Sessions,
    form: &[(String, String)],
    first_form: &[(String, String)],
    saved: &Saved,
) -> Response {
    if form != first_form {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            "Keys for idempotent requests can only be used with the same parameters they were first used with.",
        );
    }
    let mut response = match saved {
        Saved::Session(id) => Json(sessions.by_id[id].clone()).into_response(),
        Saved::ServerError => server_error(),
    };
    response.headers_mut().insert(
        "idempotent-replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    response
}

/// The session Stripe would make of `request`, or why it would refuse.
fn new_session(base_url: &str, request: &SeenRequest) -> Result<Value, String> {
    let required = |name: &str| {
        request
            .field(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("Missing required param: {name}."))
    };
    let mode = required("mode")?;
    if mode != "payment" && mode != "subscription" {
        return Err("this fake makes mode=payment and mode=subscription sessions".to_owned());
    }
    if mode == "subscription" {
        required("line_items[0][price_data][recurring][interval]")?;
    }
    let integer = |name: &str| -> Result<i64, String> {
        required(name)?
            .parse::<i64>()
            .map_err(|_| format!("Invalid integer: {name}"))
    };
    let unit_amount = integer("line_items[0][price_data][unit_amount]")?;
    let quantity = integer("line_items[0][quantity]")?;
    let currency = required("line_items[0][price_data][currency]")?;
    required("line_items[0][price_data][product_data][name]")?;
    required("success_url")?;
    let metadata: serde_json::Map<String, Value> = request
        .form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name.to_owned(), json!(v)))
        })
        .collect();
    let subscription_metadata: serde_json::Map<String, Value> = request
        .form
        .iter()
        .filter_map(|(k, v)| {
            let name = k
                .strip_prefix("subscription_data[metadata][")?
                .strip_suffix(']')?;
            Some((name.to_owned(), json!(v)))
        })
        .collect();
    let id = format!("cs_test_{}", simple_id());
    Ok(json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("{base_url}/c/pay/{id}"),
        "mode": mode,
        "interval": request.field("line_items[0][price_data][recurring][interval]"),
        "subscription_metadata": subscription_metadata,
        "subscription": null,
        "customer": null,
        "payment_status": "unpaid",
        "status": "open",
        "amount_subtotal": unit_amount * quantity,
        "amount_total": unit_amount * quantity,
        "currency": currency,
        "client_reference_id": request.field("client_reference_id"),
        "metadata": metadata,
        "payment_intent": null,
        "success_url": request.field("success_url"),
        "cancel_url": request.field("cancel_url"),
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
    }))
}

/// What a person sees on opening a session's `url`: the payment is made
/// at once (the event sent) and the page says what became of it.
/// Opening it again sends the event again (a webhook that failed, retried).
async fn pay_page(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !shared
        .sessions
        .lock()
        .expect("lock")
        .by_id
        .contains_key(&id)
    {
        return (StatusCode::NOT_FOUND, "no such Checkout Session").into_response();
    }
    match pay_session(&shared, &id).await {
        Ok(status) => {
            let success_url = shared.sessions.lock().expect("lock").by_id[&id]["success_url"]
                .as_str()
                .unwrap_or_default()
                .replace("{CHECKOUT_SESSION_ID}", &id);
            Html(format!(
                "<!doctype html><title>Paid (fake Stripe)</title>\
                 <p>Session <code>{id}</code> is paid. The webhook answered {status}.</p>\
                 <p><a href=\"{success_url}\">Back to the shop</a></p>"
            ))
            .into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "the session is paid, but its event was not delivered (reload to resend): {e:#}"
            ),
        )
            .into_response(),
    }
}

/// `application/x-www-form-urlencoded`: `&`-separated `name=value` pairs,
/// `+` for a space, `%XX` for a byte.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |b: u8| char::from(b).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(high), Some(low)) => {
                            out.push(u8::try_from(high * 16 + low).expect("two hex digits"));
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_brackets_spaces_and_escapes() {
        let form =
            parse_form(b"line_items%5B0%5D%5Bquantity%5D=1&name=Pro+Pack&url=a%7Bb%7D&bad=%zz");
        assert_eq!(
            form,
            [
                ("line_items[0][quantity]".to_owned(), "1".to_owned()),
                ("name".to_owned(), "Pro Pack".to_owned()),
                ("url".to_owned(), "a{b}".to_owned()),
                ("bad".to_owned(), "%zz".to_owned()),
            ]
        );
    }
}
