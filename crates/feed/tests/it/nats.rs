//! NATS JetStream on 127.0.0.1:4222: changes reach the stream in order with
//! their seq as `Nats-Msg-Id`, and publishing again from an old position
//! (as after a crash before the cursor was saved) stores nothing twice.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use kith_feed::NatsSettings;
use kith_store::HubStore;
use serde_json::Value;

use crate::{feed, produce, service};

const NATS: &str = "127.0.0.1:4222";

/// A stream and subject prefix of this test's own, so runs never meet.
fn names() -> (String, String) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (format!("KITH_TEST_{n}"), format!("kithtest.{n}"))
}

async fn wait_cursor(store: &dyn HubStore, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.feed_cursor("nats").await.unwrap() != Some(want) {
        assert!(
            Instant::now() < deadline,
            "the NATS cursor never reached {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changes_reach_jetstream_in_order_once() {
    let test = "nats::changes_reach_jetstream_in_order_once";
    if !service("NATS JetStream", NATS, test).await {
        return;
    }
    let (stream_name, prefix) = names();
    let settings = NatsSettings {
        url: format!("nats://{NATS}"),
        stream: stream_name.clone(),
        subject_prefix: prefix.clone(),
        batch: 3,
        enabled: true,
    };
    let (store, feed) = feed().await;
    let seqs = produce(store.as_ref(), 7, "n").await;
    let task = kith_feed::nats::spawn(feed.clone(), settings.clone());
    wait_cursor(store.as_ref(), *seqs.last().unwrap()).await;

    let client = async_nats::connect(NATS).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream(&stream_name).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.config.subjects, vec![format!("{prefix}.>")]);
    assert_eq!(info.state.messages, 7);
    for (i, seq) in seqs.iter().enumerate() {
        let m = stream.get_raw_message(i as u64 + 1).await.unwrap();
        let id = m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string());
        assert_eq!(id, Some(seq.to_string()), "message {i} carries its seq");
        let kind = if i % 2 == 0 {
            "consent.changed"
        } else {
            "record.updated"
        };
        assert_eq!(m.subject.as_str(), format!("{prefix}.{kind}"));
        let change: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(change["seq"], *seq);
        assert_eq!(change["kind"], kind);
    }

    // As if kith had crashed after publishing but before storing its
    // position: it publishes everything again, and JetStream keeps one of each.
    task.abort();
    let _ = task.await;
    store.set_feed_cursor("nats", 0).await.unwrap();
    let more = produce(store.as_ref(), 2, "m").await;
    let task = kith_feed::nats::spawn(feed, settings);
    wait_cursor(store.as_ref(), *more.last().unwrap()).await;
    let info = stream.info().await.unwrap().clone();
    assert_eq!(
        info.state.messages, 9,
        "seven once each after the replay, and the two new ones"
    );
    let m = stream.get_raw_message(9).await.unwrap();
    assert_eq!(
        m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()),
        Some(more[1].to_string())
    );
    task.abort();
    js.delete_stream(&stream_name).await.unwrap();
}

#[tokio::test]
async fn a_stream_that_does_not_take_the_subjects_is_named() {
    let test = "nats::a_stream_that_does_not_take_the_subjects_is_named";
    if !service("NATS JetStream", NATS, test).await {
        return;
    }
    let (stream_name, prefix) = names();
    let client = async_nats::connect(NATS).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{prefix}.other")],
        ..Default::default()
    })
    .await
    .unwrap();
    let settings = NatsSettings {
        url: format!("nats://{NATS}"),
        stream: stream_name.clone(),
        subject_prefix: prefix.clone(),
        batch: 10,
        enabled: true,
    };
    let err = kith_feed::nats::ensure_stream(&js, &settings)
        .await
        .unwrap_err()
        .to_string();
    js.delete_stream(&stream_name).await.unwrap();
    assert!(err.contains(&stream_name), "{err}");
    assert!(err.contains(&format!("{prefix}.>")), "{err}");
}
