//! A work-queue message that carries several deliveries (what the ingester
//! publishes when deliveries are recorded together): each is applied as if
//! it came alone. One that must wait for its order leaves for a wait queue
//! alone, one that cannot be read is parked alone, the rest are granted,
//! and the carrier is acknowledged once; a carrier whose headers do not
//! describe its body is parked whole.

use std::time::Duration;

use bytes::Bytes;
use lapin::types::{AMQPValue, FieldArray, ShortString};
use ledgerhook_domain::{Delivery, Provider};
use ledgerhook_runtime::amqp::{self, Destination, Topology, carrier};
use ledgerhook_store::deliveries::record::{self, NewDelivery};
use ledgerhook_tests::harness::{TestEnv, eventually, seen};
use ledgerhook_tests::webhook::payment_succeeded;

const WAIT: Duration = Duration::from_secs(60);

/// Records `bodies` as Crossmint deliveries (as the ingester would) and
/// returns them ready to publish.
async fn recorded(env: &TestEnv, bodies: &[Vec<u8>]) -> Vec<Delivery> {
    let now = chrono::Utc::now();
    let ids: Vec<String> = (0..bodies.len())
        .map(|n| format!("msg_carried_{n}"))
        .collect();
    let records: Vec<NewDelivery<'_>> = ids
        .iter()
        .zip(bodies)
        .map(|(id, body)| NewDelivery {
            delivery_id: id,
            body,
            headers: "[]".to_owned(),
            signed_at: now,
            received_at: now,
            verified_by: "test",
        })
        .collect();
    let rows = record::record_batch(&env.pool, Provider::Crossmint.as_str(), &records)
        .await
        .unwrap();
    rows.into_iter()
        .zip(ids)
        .zip(bodies)
        .map(|((row, delivery_id), body)| Delivery {
            row: row.expect("a new delivery"),
            provider: Provider::Crossmint,
            delivery_id,
            received_at: now,
            body: Bytes::from(body.clone()),
        })
        .collect()
}

async fn channel(env: &TestEnv) -> (lapin::Connection, lapin::Channel, Topology) {
    let connection = amqp::connect(&env.amqp_url, "ledgerhook-tests")
        .await
        .unwrap();
    let channel = amqp::confirmed_channel(&connection).await.unwrap();
    let topology = Topology::new(&env.queue_prefix);
    topology.declare(&channel).await.unwrap();
    (connection, channel, topology)
}

#[tokio::test]
async fn each_delivery_in_a_carrier_is_settled_as_if_it_came_alone() {
    let env = TestEnv::new().await.unwrap();
    let granted = payment_succeeded("carried-now", "carried-user", "starter", "10");
    let mut late = payment_succeeded("carried-late", "ignored", "vip", "100.00");
    late["data"].as_object_mut().unwrap().remove("metadata");
    let deliveries = recorded(
        &env,
        &[
            serde_json::to_vec(&granted).unwrap(),
            serde_json::to_vec(&late).unwrap(),
            b"[\"not an event\"]".to_vec(),
        ],
    )
    .await;
    let (_connection, channel, topology) = channel(&env).await;
    amqp::publish_deliveries(&channel, &topology, &deliveries)
        .await
        .unwrap()
        .outcome()
        .await
        .unwrap();
    assert_eq!(
        env.queue_depth(&topology.queue).await.unwrap(),
        1,
        "three deliveries, one message"
    );

    let worker = env
        .start_worker(&[
            ("WORKER_RETRY_INITIAL_MS", "1500"),
            ("WORKER_RETRY_MULTIPLIER", "1"),
            ("WORKER_RETRY_ATTEMPTS", "20"),
        ])
        .await
        .unwrap();
    // The first is granted; the third is parked alone, noted on its row.
    env.wait_for_count(
        "select count(*) from user_credits where user_id = 'carried-user'",
        1,
        WAIT,
    )
    .await;
    let parked_row = deliveries[2].row;
    env.wait_for_count(
        &format!(
            "select count(*) from webhook_deliveries where id = {parked_row} and outcome = 'parked'"
        ),
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.queue_depth(&topology.parked_queue).await.unwrap(), 1);
    // The second waits alone, in the single-delivery form, with its own row.
    let wait_queue = topology.wait_queue(Duration::from_millis(1500));
    worker
        .metrics_once(
            "ledgerhook_worker_retries_total",
            &["reason=\"order_unknown\""],
            1.0,
        )
        .await;
    let parked = channel
        .basic_get(
            topology.parked_queue.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .expect("the parked copy");
    let headers = parked.properties.headers().as_ref();
    assert_eq!(
        amqp::header_i64(headers, amqp::HEADER_DELIVERY_ROW),
        Some(parked_row)
    );
    assert_eq!(carrier::carried(headers, parked.data.len()), None);
    assert_eq!(&parked.data[..], b"[\"not an event\"]");
    assert_eq!(
        parked
            .properties
            .message_id()
            .as_ref()
            .map(ShortString::as_str),
        Some(deliveries[2].delivery_id.as_str())
    );

    // The carrier itself was acknowledged once, and is not coming back.
    assert_eq!(env.queue_depth(&topology.queue).await.unwrap(), 0);
    env.create_order("carried-late", "late-user", "vip").await;
    env.wait_for_count(
        "select count(*) from user_credits where user_id = 'late-user'",
        1,
        WAIT,
    )
    .await;
    assert_eq!(env.balance("carried-user").await, 500);
    assert_eq!(env.balance("late-user").await, 9600);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 2);
    assert_eq!(
        env.queue_depth(&wait_queue).await.unwrap(),
        0,
        "the waiting copy came back and was settled"
    );
}

#[tokio::test]
async fn a_carrier_whose_headers_do_not_describe_its_body_is_parked_whole() {
    let env = TestEnv::new().await.unwrap();
    let body =
        serde_json::to_vec(&payment_succeeded("torn", "torn-user", "starter", "10")).unwrap();
    let deliveries = recorded(&env, &[body.clone(), body]).await;
    let (_connection, channel, topology) = channel(&env).await;
    let (body, properties) = carrier::carrier(&deliveries);
    // One length short: the bodies can no longer be told apart.
    let mut headers = properties.headers().clone().unwrap();
    let mut lengths = FieldArray::default();
    lengths.push(AMQPValue::LongLongInt(3));
    headers.insert(
        ShortString::from(carrier::HEADER_CARRIED_LENGTHS),
        AMQPValue::FieldArray(lengths),
    );
    amqp::publish_confirmed(
        &channel,
        Destination::work(&topology),
        &body,
        properties.with_headers(headers),
    )
    .await
    .unwrap();

    let worker = env.start_worker(&[]).await.unwrap();
    eventually(WAIT, async || {
        let depth = env
            .queue_depth(&topology.parked_queue)
            .await
            .map_err(|e| e.to_string())?;
        seen(depth, depth == 1).map_err(|d| format!("{d} parked"))
    })
    .await;
    assert_eq!(env.queue_depth(&topology.queue).await.unwrap(), 0);
    assert_eq!(
        worker
            .metric("ledgerhook_parked_total", &["reason=\"malformed_message\""])
            .await,
        1.0
    );
    assert_eq!(env.count("select count(*) from credit_ledger").await, 0);
    assert_eq!(
        env.count("select count(*) from webhook_deliveries where processed_at is null")
            .await,
        2,
        "neither delivery was applied: a person looks at the parked carrier"
    );
}
