//! Webhooks against a receiver served here: retries with backoff, Retry-After,
//! signatures, order, kinds, and resuming from the stored position.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kith_feed::WebhookSettings;
use kith_feed::signing::verify;
use kith_store::{ChangeKind, HubStore};
use serde_json::Value;

use crate::{feed, produce};

const SECRET: &[u8] = b"test-secret-0123456789abcdef";

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    status: u16,
    body: Bytes,
    signature: String,
    delivery: String,
    timestamp: String,
}

impl Received {
    fn seqs(&self) -> Vec<i64> {
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect()
    }
}

/// What the receiver answers, in turn; 200 once the script runs out.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    TooMany { retry_after: u64 },
}

#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Reply>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn take(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = r
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Status(200));
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let status = match reply {
        Reply::Status(s) => s,
        Reply::TooMany { .. } => 429,
    };
    r.got.lock().unwrap().push(Received {
        at: Instant::now(),
        status,
        body,
        signature: h("x-kith-signature"),
        delivery: h("x-kith-delivery"),
        timestamp: h("x-kith-timestamp"),
    });
    match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Reply::TooMany { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
        )
            .into_response(),
    }
}

async fn serve(script: Vec<Reply>) -> (String, Receiver) {
    let receiver = Receiver {
        script: Arc::new(Mutex::new(script.into())),
        ..Default::default()
    };
    let app = Router::new()
        .route("/hook", post(take))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

fn hook(name: &str, url: &str, batch: usize, kinds: Vec<ChangeKind>) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url: url.into(),
        secret_env: "UNUSED_HERE".into(),
        kinds,
        batch,
        timeout: Duration::from_secs(5),
        enabled: true,
    }
}

/// Waits until the receiver has accepted deliveries holding `want` seqs.
async fn accepted(r: &Receiver, want: usize, within: Duration) -> Vec<Received> {
    let deadline = Instant::now() + within;
    loop {
        let ok: Vec<Received> = r
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.status == 200)
            .cloned()
            .collect();
        let n: usize = ok.iter().map(|d| d.seqs().len()).sum();
        if n >= want {
            return ok;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {want} changes accepted in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The position stored for `consumer` once it reaches `want` (or after 5 s,
/// whatever it is then). The receiver answers before the sender stores its
/// position, so the position may trail the last acceptance by a moment.
async fn stored_position(store: &dyn HubStore, consumer: &str, want: i64) -> Option<i64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let at = store.feed_cursor(consumer).await.unwrap();
        if at == Some(want) || Instant::now() >= deadline {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failing_receiver_gets_every_change_in_order_after_retries() {
    let (store, feed) = feed().await;
    let first = produce(store.as_ref(), 5, "a").await;
    let (url, receiver) = serve(vec![
        Reply::Status(500),
        Reply::Status(500),
        Reply::TooMany { retry_after: 2 },
    ])
    .await;
    let task =
        kith_feed::webhook::spawn(feed.clone(), hook("crm", &url, 3, vec![]), SECRET.to_vec())
            .unwrap();
    let ok = accepted(&receiver, 5, Duration::from_secs(30)).await;
    let all = receiver.got.lock().unwrap().clone();

    // Three refusals, then the same batch taken; then the rest.
    let statuses: Vec<u16> = all.iter().map(|d| d.status).collect();
    assert_eq!(statuses, [500, 500, 429, 200, 200]);
    for d in &all[..4] {
        assert_eq!(d.body, all[0].body, "a retry sends the same batch");
        assert_eq!(d.delivery, format!("{}-{}", first[0], first[2]));
    }
    let delivered: Vec<i64> = ok.iter().flat_map(Received::seqs).collect();
    assert_eq!(delivered, first, "every change once, in order");
    assert_eq!(ok[1].delivery, format!("{}-{}", first[3], first[4]));

    // Backoff: 1 s doubling (with jitter of up to half), then Retry-After.
    let gap = |i: usize| all[i + 1].at - all[i].at;
    assert!(gap(0) >= Duration::from_millis(450), "{:?}", gap(0));
    assert!(gap(1) >= Duration::from_millis(950), "{:?}", gap(1));
    assert!(
        gap(2) >= Duration::from_millis(1950),
        "Retry-After: 2 is honoured: {:?}",
        gap(2)
    );

    // Signed, and stamped with the time of sending.
    let now = chrono::Utc::now().timestamp();
    for d in &all {
        assert!(verify(SECRET, &d.body, &d.signature), "{}", d.signature);
        assert!(!verify(
            b"another key, same length ok",
            &d.body,
            &d.signature
        ));
        let ts: i64 = d.timestamp.parse().unwrap();
        assert!((now - ts).abs() < 60, "timestamp {ts} vs {now}");
    }
    let body: Value = serde_json::from_slice(&ok[0].body).unwrap();
    assert_eq!(body["changes"][0]["kind"], "consent.changed");
    assert_eq!(body["changes"][0]["data"]["tag"], "a");
    assert_eq!(
        stored_position(store.as_ref(), "webhook:crm", *first.last().unwrap()).await,
        first.last().copied()
    );

    // New changes go out at once.
    let started = Instant::now();
    let second = produce(store.as_ref(), 2, "b").await;
    let ok = accepted(&receiver, 7, Duration::from_secs(5)).await;
    let latency = started.elapsed();
    eprintln!("webhook: commit to accepted delivery {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    assert_eq!(ok.last().unwrap().seqs(), second);

    // Stopped and started again, it resumes from its stored position.
    stored_position(store.as_ref(), "webhook:crm", *second.last().unwrap()).await;
    task.abort();
    let _ = task.await;
    let third = produce(store.as_ref(), 2, "c").await;
    let task =
        kith_feed::webhook::spawn(feed, hook("crm", &url, 3, vec![]), SECRET.to_vec()).unwrap();
    let ok = accepted(&receiver, 9, Duration::from_secs(5)).await;
    let delivered: Vec<i64> = ok.iter().flat_map(Received::seqs).collect();
    let mut want = first.clone();
    want.extend(&second);
    want.extend(&third);
    assert_eq!(delivered, want, "no gap, no repeat across the restart");
    task.abort();
}

#[tokio::test]
async fn a_webhook_gets_only_its_kinds_and_moves_past_the_rest() {
    let (store, feed) = feed().await;
    let seqs = produce(store.as_ref(), 6, "k").await;
    let (url, receiver) = serve(vec![]).await;
    let task = kith_feed::webhook::spawn(
        feed,
        hook("consents", &url, 100, vec![ChangeKind::ConsentChanged]),
        SECRET.to_vec(),
    )
    .unwrap();
    let ok = accepted(&receiver, 3, Duration::from_secs(5)).await;
    let delivered: Vec<i64> = ok.iter().flat_map(Received::seqs).collect();
    assert_eq!(delivered, vec![seqs[0], seqs[2], seqs[4]]);
    // Its position passes the changes it does not want, so they are not read again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.feed_cursor("webhook:consents").await.unwrap() != Some(seqs[5]) {
        assert!(
            Instant::now() < deadline,
            "the cursor never reached the last change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}
