//! The change feed on the real binary: a server-sent-events consumer sees a
//! contribution and ingested events, disconnects, and resumes with
//! `Last-Event-ID` to exactly the changes it missed; a webhook receiver that
//! fails at first gets every change in order, signed; NATS JetStream gets
//! every change in order with its seq as `Nats-Msg-Id`.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::Served;

fn key(s: &Served, scope: &str) -> String {
    let out = s.kith(&["keys", "create", "--scope", scope, "--label", "feed test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn get(c: &reqwest::Client, base: &str, path: &str, key: &str) -> (u16, Value) {
    let r = c
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The party an e-mail address finds.
async fn customer(c: &reqwest::Client, base: &str, email: &str, key: &str) -> String {
    let (status, body) = get(c, base, &format!("/api/v1/search?q={email}"), key).await;
    assert_eq!(status, 200, "{body}");
    body["hits"][0]["party"].as_str().unwrap().to_string()
}

async fn contribute(c: &reqwest::Client, base: &str, key: &str, party: &str, body: Value) {
    let r = c
        .post(format!("{base}/api/v1/parties/{party}/contributions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
}

async fn ingest(c: &reqwest::Client, base: &str, key: &str, batch: Value) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let r = c
        .post(format!("{base}/v1/batch"))
        .header("authorization", format!("Basic {auth}"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// Every change after `after`, read page by page from `/api/v1/changes/page`.
async fn all_changes(c: &reqwest::Client, base: &str, key: &str, mut after: i64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (status, page) = get(
            c,
            base,
            &format!("/api/v1/changes/page?after={after}&limit=1000"),
            key,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["changes"].as_array().unwrap().iter().cloned());
        after = page["next_after"].as_i64().unwrap();
        if page["more"] != true {
            return out;
        }
    }
}

fn seqs(changes: &[Value]) -> Vec<i64> {
    changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect()
}

/// Waits until `check` finds what it wants among all changes after `after`.
async fn until_changes(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    after: i64,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = all_changes(c, base, key, after).await;
        if check(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn has_message(change: &Value, message_id: &str) -> bool {
    change["kind"] == "events.ingested"
        && change["data"]["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["message_id"] == message_id))
}

// --- a server-sent-events client ------------------------------------------------

#[derive(Debug, Clone)]
struct SseEvent {
    id: i64,
    kind: String,
    data: Value,
    at: Instant,
}

/// An open `/api/v1/changes` stream; dropping it disconnects.
struct Sse {
    rx: mpsc::Receiver<SseEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sse {
    async fn connect(base: &str, key: &str, query: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(format!("{base}/api/v1/changes{query}"))
            .bearer_auth(key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let mut response = req.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (tx, rx) = mpsc::channel(10_000);
        let task = tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = v.parse().ok();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            kind = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    // Keep-alive comments carry no id.
                    let Some(id) = id else { continue };
                    let event = SseEvent {
                        id,
                        kind,
                        data: serde_json::from_str(&data).unwrap(),
                        at: Instant::now(),
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        });
        Sse { rx, task }
    }

    /// Events up to and including the first that `want` accepts.
    async fn until(&mut self, what: &str, want: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let e = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} on the stream; saw {seen:?}"))
                .expect("the stream stays open");
            let done = want(&e);
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    /// Exactly `n` events, then nothing more for a while.
    async fn exactly(&mut self, n: usize) -> Vec<SseEvent> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => got.push(e),
                _ => panic!("{} of {n} events arrived: {got:?}", got.len()),
            }
        }
        if let Ok(Some(extra)) =
            tokio::time::timeout(Duration::from_millis(800), self.rx.recv()).await
        {
            panic!("an event beyond the {n} expected: {extra:?}");
        }
        got
    }
}

#[tokio::test]
async fn an_sse_consumer_sees_contributions_and_events_and_resumes_without_gap_or_repeat() {
    let s = Served::start(200, "");
    let (read, contribute_key, ingest_key) =
        (key(&s, "read"), key(&s, "contribute"), key(&s, "ingest"));
    let c = reqwest::Client::new();
    let party = customer(&c, &s.base, &s.customer_email, &read).await;

    // The stream needs a key of scope read.
    let r = c
        .get(format!("{}/api/v1/changes", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(format!("{}/api/v1/changes", s.base))
        .bearer_auth(&ingest_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, body) = get(&c, &s.base, "/api/v1/changes/page?after=x", &read).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("after"), "{body}");

    // The demo's sync is already in the feed: records, parties, links.
    let (_, first) = get(&c, &s.base, "/api/v1/changes/page?limit=5", &read).await;
    assert_eq!(first["changes"][0]["seq"], 1);
    assert_eq!(first["changes"][0]["kind"], "record.inserted");
    assert_eq!(first["more"], true);

    let mut sse = Sse::connect(&s.base, &read, "?after=latest", None).await;

    // A consent through the API is pushed at once, with its new value.
    contribute(
        &c,
        &s.base,
        &contribute_key,
        &party,
        json!({"kind": "consent", "attribute": "newsletter", "value": false}),
    )
    .await;
    let committed = Instant::now();
    let seen = sse
        .until("consent.changed", |e| e.kind == "consent.changed")
        .await;
    let consent = seen.last().unwrap();
    let latency = consent.at - committed;
    let _ = writeln!(
        std::io::stderr(),
        "feed: contribution committed to SSE delivery {latency:?}"
    );
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    assert_eq!(consent.data["seq"], consent.id);
    assert_eq!(consent.data["party"], party.as_str());
    assert_eq!(consent.data["data"]["attribute"], "newsletter");
    assert_eq!(consent.data["data"]["value"], false);

    // Events through the Segment API arrive once resolved, with the party
    // their user was linked to, and without their traits.
    ingest(
        &c,
        &s.base,
        &ingest_key,
        json!({"batch": [
            {"type": "identify", "userId": "feed-user-1", "messageId": "feed-m-1",
             "traits": {"email": s.customer_email, "firstName": "Margaret"}},
            {"type": "track", "userId": "feed-user-1", "messageId": "feed-m-2",
             "event": "Seed Box Viewed", "properties": {"price": 19.99}}
        ]}),
    )
    .await;
    let seen = sse
        .until("the ingested events", |e| has_message(&e.data, "feed-m-2"))
        .await;
    let fed = &seen.last().unwrap().data;
    let events = fed["data"]["events"].as_array().unwrap();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["feed-m-1", "feed-m-2"]);
    assert_eq!(events[1]["name"], "Seed Box Viewed");
    assert!(
        events
            .iter()
            .all(|e| e["user_id"] == "feed-user-1" && e["party"] == party.as_str()),
        "each event names the party its user joined: {events:?}"
    );
    let text = fed.to_string();
    assert!(
        !text.contains(&s.customer_email) && !text.contains("19.99"),
        "{text}"
    );
    assert!(
        seen.iter()
            .any(|e| e.kind == "link.changed" && e.data["subject"] == "ingest:feed-user-1"),
        "the new record's link came first: {seen:?}"
    );
    let ids: Vec<i64> = seen.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    let last = *ids.last().unwrap();

    // Gone; meanwhile more happens.
    drop(sse);
    contribute(
        &c,
        &s.base,
        &contribute_key,
        &party,
        json!({"kind": "consent", "attribute": "newsletter", "value": true}),
    )
    .await;
    ingest(
        &c,
        &s.base,
        &ingest_key,
        json!({"batch": [{"type": "track", "userId": "feed-user-1", "messageId": "feed-m-3",
                          "event": "Checkout Started"}]}),
    )
    .await;
    let missed = until_changes(&c, &s.base, &read, last, "feed-m-3", |cs| {
        cs.iter().any(|c| has_message(c, "feed-m-3"))
    })
    .await;
    assert!(
        missed
            .iter()
            .any(|c| c["kind"] == "consent.changed" && c["data"]["value"] == true)
    );

    // Back with Last-Event-ID (which wins over the URL's after=latest, as a
    // reconnecting EventSource repeats its URL): exactly what it missed.
    let mut sse = Sse::connect(&s.base, &read, "?after=latest", Some(last)).await;
    let resumed = sse.exactly(missed.len()).await;
    let got: Vec<i64> = resumed.iter().map(|e| e.id).collect();
    assert_eq!(got, seqs(&missed), "no gap, no repeat");
    assert!(got[0] > last);
    for (e, c) in resumed.iter().zip(&missed) {
        assert_eq!(&e.data, c);
        assert_eq!(e.kind, c["kind"].as_str().unwrap());
    }

    // Polling consumers can filter by kind.
    let (_, page) = get(
        &c,
        &s.base,
        &format!("/api/v1/changes/page?after={last}&kinds=consent.changed"),
        &read,
    )
    .await;
    let kinds: Vec<&str> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["consent.changed"]);
    assert_eq!(page["next_after"], *got.last().unwrap());

    // Pruned history is refused, never skipped in silence: resuming below
    // it is 410 Gone; `after=latest` goes on.
    use kith_store::HubStore as _;
    let store = kith_store::SqliteStore::open(&s.config.parent().unwrap().join("hub.db"))
        .await
        .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(store.prune_changes(later, &[]).await.unwrap() > 0);
    let (status, body) = get(&c, &s.base, "/api/v1/changes/page?after=1", &read).await;
    assert_eq!(status, 410, "{body}");
    assert!(body["error"].as_str().unwrap().contains("pruned"), "{body}");
    let (status, body) = get(&c, &s.base, "/api/v1/changes/page?after=latest", &read).await;
    assert_eq!(status, 200, "{body}");
    let r = c
        .get(format!("{}/api/v1/changes", s.base))
        .bearer_auth(&read)
        .header("Last-Event-ID", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);
}

// --- webhooks ---------------------------------------------------------------------

const SECRET: &str = "e2e-webhook-secret-5d41402abc4b2a76";

#[derive(Debug, Clone)]
struct Delivery {
    status: u16,
    body: Vec<u8>,
    signature: String,
    id: String,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let mut got = r.got.lock().unwrap();
    // The first two deliveries fail.
    let status = if got.len() < 2 { 500 } else { 200 };
    let h = |n: &str| headers[n].to_str().unwrap().to_string();
    got.push(Delivery {
        status,
        body: body.to_vec(),
        signature: h("x-kith-signature"),
        id: h("x-kith-delivery"),
    });
    axum::http::StatusCode::from_u16(status).unwrap()
}

/// `kith serve` with extra environment (the harness passes none), killed on drop.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kith"));
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])
    .env_remove("KITH_CONFIG")
    .env_remove("KITH_TEST_WEBHOOK_SECRET")
    .env("KITH_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Server {
    async fn start(config: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let mut child = serve(config, env).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let (l1, l2) = (log.clone(), log.clone());
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                l1.lock().unwrap().push_str(&format!("{l}\n"));
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                l2.lock().unwrap().push_str(&format!("{l}\n"));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "kith serve never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Server { child, base, log }
    }
}

#[tokio::test]
async fn a_webhook_that_fails_at_first_gets_every_change_in_order_signed() {
    let mut s = Served::start(100, "");
    let read = key(&s, "read");
    let contribute_key = key(&s, "contribute");
    s.kill();

    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut toml = std::fs::read_to_string(&s.config).unwrap();
    toml.push_str(&format!(
        "\n[[changes.webhooks]]\nname = \"e2e\"\nurl = \"{url}\"\nsecret_env = \"KITH_TEST_WEBHOOK_SECRET\"\nbatch = 300\n"
    ));
    std::fs::write(&s.config, toml).unwrap();

    // Without its key in the environment, serve refuses to start and says why.
    let mut child = serve(&s.config, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kith serve started without the webhook's key");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("changes.webhooks[0].secret_env") && err.contains("KITH_TEST_WEBHOOK_SECRET"),
        "{err}"
    );

    let server = Server::start(&s.config, &[("KITH_TEST_WEBHOOK_SECRET", SECRET)]).await;
    let c = reqwest::Client::new();
    let party = customer(&c, &server.base, &s.customer_email, &read).await;
    contribute(
        &c,
        &server.base,
        &contribute_key,
        &party,
        json!({"kind": "preference", "attribute": "channel", "value": "sms"}),
    )
    .await;
    // Everything the store holds, the demo's sync included, from the start.
    let all = all_changes(&c, &server.base, &read, 0).await;
    let latest = *seqs(&all).last().unwrap();
    assert_eq!(all.last().unwrap()["kind"], "preference.changed");

    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = receiver.got.lock().unwrap().clone();
        let delivered: Vec<i64> = got
            .iter()
            .filter(|d| d.status == 200)
            .flat_map(|d| {
                let body: Value = serde_json::from_slice(&d.body).unwrap();
                seqs(body["changes"].as_array().unwrap())
            })
            .collect();
        if delivered.last() == Some(&latest) {
            assert_eq!(delivered, seqs(&all), "every change once, in order");
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook got {} of {} changes; log:\n{}",
            delivered.len(),
            all.len(),
            server.log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let statuses: Vec<u16> = got.iter().map(|d| d.status).collect();
    assert_eq!(&statuses[..3], [500, 500, 200]);
    assert_eq!(got[0].id, got[2].id, "a retry is the same delivery");
    assert_eq!(got[0].body, got[2].body);
    let first_batch = seqs(&all[..all.len().min(300)]);
    assert_eq!(
        got[0].id,
        format!("{}-{}", first_batch[0], first_batch.last().unwrap())
    );
    for d in &got {
        assert!(
            kith_feed::signing::verify(SECRET.as_bytes(), &d.body, &d.signature),
            "delivery {} is signed with the webhook's key",
            d.id
        );
    }
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("retrying in"), "failures are logged: {log}");
    assert!(!log.contains(SECRET), "the key never reaches the log");
}

// --- NATS JetStream ------------------------------------------------------------------

const NATS: &str = "127.0.0.1:4222";

/// Whether NATS answers; when not, says so (or fails under CI).
fn nats_up(test: &str) -> bool {
    let error = match std::net::TcpStream::connect_timeout(
        &NATS.parse().unwrap(),
        Duration::from_secs(3),
    ) {
        Ok(_) => return true,
        Err(e) => e.to_string(),
    };
    if std::env::var_os("KITH_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!(
            "NATS at {NATS} is required under CI (KITH_REQUIRE_SERVICES) but unreachable: {error}"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: NATS JetStream at {NATS} unreachable ({error})"
    );
    false
}

#[tokio::test]
async fn nats_jetstream_gets_every_change_in_order_with_its_seq() {
    if !nats_up("feed::nats_jetstream_gets_every_change_in_order_with_its_seq") {
        return;
    }
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (stream, prefix) = (format!("KITH_E2E_{n}"), format!("kithe2e.{n}"));
    let s = Served::start(
        100,
        &format!(
            "\n[changes.nats]\nurl = \"nats://{NATS}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n"
        ),
    );
    let read = key(&s, "read");
    let contribute_key = key(&s, "contribute");
    let c = reqwest::Client::new();

    let client = async_nats::connect(NATS).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // The server creates the stream when it starts publishing.
    let deadline = Instant::now() + Duration::from_secs(20);
    let js_stream = loop {
        if let Ok(st) = js.get_stream(&stream).await {
            break st;
        }
        assert!(Instant::now() < deadline, "stream {stream} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let consumer = js_stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{prefix}.>"),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut next = async || {
        let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("a message within 20 s")
            .unwrap()
            .unwrap();
        let id: i64 = m
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        let change: Value = serde_json::from_slice(&m.payload).unwrap();
        (m.subject.to_string(), id, change, Instant::now())
    };

    // The demo's sync, from the first change on, in order.
    let all = all_changes(&c, &s.base, &read, 0).await;
    for want in &all {
        let (subject, id, change, _) = next().await;
        assert_eq!(&change, want);
        assert_eq!(id, want["seq"].as_i64().unwrap(), "Nats-Msg-Id is the seq");
        assert_eq!(
            subject,
            format!("{prefix}.{}", want["kind"].as_str().unwrap())
        );
    }

    // A new change arrives live.
    let party = customer(&c, &s.base, &s.customer_email, &read).await;
    contribute(
        &c,
        &s.base,
        &contribute_key,
        &party,
        json!({"kind": "consent", "attribute": "sms", "value": false}),
    )
    .await;
    let committed = Instant::now();
    let (subject, id, change, at) = next().await;
    let _ = writeln!(
        std::io::stderr(),
        "feed: contribution committed to JetStream delivery {:?}",
        at - committed
    );
    assert_eq!(subject, format!("{prefix}.consent.changed"));
    assert_eq!(id, *seqs(&all).last().unwrap() + 1);
    assert_eq!(change["data"]["attribute"], "sms");
    drop(messages);
    drop(s);
    js.delete_stream(&stream).await.unwrap();
}
