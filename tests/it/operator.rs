//! The operator's command: parked deliveries listed, redriven once the cause
//! is fixed, and replays that report what happened and never grant twice.

use std::time::Duration;

use chrono::Utc;
use ledgerhook_runtime::amqp::Topology;
use ledgerhook_tests::harness::TestEnv;
use ledgerhook_tests::webhook::{new_delivery_id, payment_succeeded};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_parked_payment_is_redriven_after_the_fix_and_a_replay_never_grants_twice() {
    let env = TestEnv::new().await.unwrap();
    let started = Utc::now();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("WORKER_RETRY_ATTEMPTS", "1")])
        .await
        .unwrap();
    let parked_queue = Topology::new(&env.queue_prefix).parked_queue;

    // A payment for an order the backend never recorded: parked at once.
    let orphan_id = new_delivery_id();
    let mut orphan = payment_succeeded("ops-order", "ignored", "pro", "50");
    orphan["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send_as(&orphan_id, &orphan).await.status, 200);
    // And one that goes through.
    let fine_id = new_delivery_id();
    assert_eq!(
        ingester
            .send_as(
                &fine_id,
                &payment_succeeded("ops-fine", "ops-fine-user", "starter", "10")
            )
            .await
            .status,
        200
    );
    env.wait_all_processed(2, WAIT).await;

    let listed = env.admin(&["parked"]).await.unwrap();
    assert!(
        listed.contains(&orphan_id) && listed.contains("ops-order"),
        "{listed}"
    );
    assert!(!listed.contains(&fine_id), "{listed}");
    assert_eq!(env.queue_depth(&parked_queue).await.unwrap(), 1);
    let shown = env.admin(&["show", &orphan_id]).await.unwrap();
    assert!(
        shown.contains("outcome: Some(\"parked\")") && shown.contains("\"orderId\":\"ops-order\""),
        "{shown}"
    );

    // The backend's order turns up; the operator redrives.
    env.create_order("ops-order", "ops-user", "pro").await;
    let redriven = env.admin(&["redrive"]).await.unwrap();
    assert!(
        redriven.contains(&format!("{orphan_id}\twas parked; sent again -> granted")),
        "{redriven}"
    );
    assert_eq!(env.balance("ops-user").await, 3300);
    assert_eq!(
        env.queue_depth(&parked_queue).await.unwrap(),
        0,
        "its parked copy left the parked queue"
    );
    assert_eq!(env.admin(&["parked"]).await.unwrap().trim(), "");

    // Replaying both, by id and by time range, sends nothing again.
    let by_id = env
        .admin(&["replay", &orphan_id, &fine_id, "msg_never_seen"])
        .await
        .unwrap();
    assert!(
        by_id.contains(&format!(
            "{orphan_id}\talready processed (granted); not sent again"
        )),
        "{by_id}"
    );
    assert!(
        by_id.contains(&format!(
            "{fine_id}\talready processed (granted); not sent again"
        )),
        "{by_id}"
    );
    assert!(by_id.contains("msg_never_seen\tnever recorded"), "{by_id}");
    let from = started.to_rfc3339();
    let to = (Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let by_time = env
        .admin(&["replay", "--from", &from, "--to", &to])
        .await
        .unwrap();
    assert!(by_time.contains("2 deliveries"), "{by_time}");
    assert_eq!(env.balance("ops-user").await, 3300);
    assert_eq!(env.balance("ops-fine-user").await, 500);
    assert_eq!(env.count("select count(*) from credit_ledger").await, 2);
}

/// Nothing in the printout acts on a terminal: every control character and
/// bidirectional override from a payload is shown escaped, and a value
/// cannot start a line of its own.
fn assert_inert(printout: &str, forged_line: &str) {
    let acting: Vec<char> = printout
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(acting.is_empty(), "{acting:?} in {printout:?}");
    assert!(
        !printout.lines().any(|line| line.starts_with(forged_line)),
        "{printout}"
    );
}

#[tokio::test]
async fn escape_sequences_in_payloads_reach_the_operators_terminal_as_text() {
    let env = TestEnv::new().await.unwrap();
    let ingester = env.start_ingester(&[]).await.unwrap();
    let _worker = env
        .start_worker(&[("WORKER_RETRY_ATTEMPTS", "1")])
        .await
        .unwrap();
    // An order nobody recorded, whose id retitles the terminal, returns the
    // cursor and forges a line: parked, with the id in its detail.
    let hostile_order = "ops-\u{1b}]0;pwned\u{7}\r\nprocessing: running";
    let orphan_id = new_delivery_id();
    let mut orphan = payment_succeeded(hostile_order, "ignored", "pro", "50");
    orphan["data"].as_object_mut().unwrap().remove("metadata");
    assert_eq!(ingester.send_as(&orphan_id, &orphan).await.status, 200);
    // A user id that clears the screen and reverses the text after it, paid
    // twice: granted once, then a duplicate.
    let hostile_user = "user-\u{1b}[2J\u{202e}gpj";
    let paid = payment_succeeded("ops-dup", hostile_user, "starter", "10");
    for _ in 0..2 {
        assert_eq!(ingester.send(&paid).await.status, 200);
    }
    env.wait_all_processed(3, WAIT).await;

    let parked = env.admin(&["parked"]).await.unwrap();
    assert!(parked.contains(&orphan_id), "{parked}");
    assert!(parked.contains("pwned"), "{parked}");
    assert_inert(&parked, "processing: running");
    let shown = env.admin(&["show", &orphan_id]).await.unwrap();
    assert!(shown.contains("outcome: Some(\"parked\")"), "{shown}");
    assert_inert(&shown, "processing: running");
    let duplicates = env.admin(&["duplicates"]).await.unwrap();
    assert!(
        duplicates.contains("user-\\u{1b}[2J\\u{202e}gpj"),
        "{duplicates}"
    );
    assert_inert(&duplicates, "processing: running");
    let audit = env.admin(&["audit", hostile_user]).await.unwrap();
    assert!(audit.contains("ops-dup"), "{audit}");
    assert_inert(&audit, "processing: running");
}
