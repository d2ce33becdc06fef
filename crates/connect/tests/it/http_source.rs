//! The HTTP connector against small APIs each test serves on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use kith_connect::{
    Connector, ConnectorConfig, Error, LookupCapability, LookupRequest, SourceConfig,
};
use kith_model::{CursorValue, IdentityAttrs, IdentityRecord, PartyKind, RecordRef};
use serde_json::{Value, json};

use crate::{build, scan_all, source};

type Params = Query<HashMap<String, String>>;

/// The query parameters of every request an API saw.
type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Serves `app` on a free port; the base URL to configure.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

const IDENTITY: &str = r#"
[identity]
from = "/members"
key = "card_no"
cursor = { column = "updated_at" }
attributes = { full_name = "name", email = "contact.email" }
"#;

/// A source on the API at `base`; `connection` adds fields to the connection table.
fn http_source(base: &str, connection: &str, facts: &str) -> SourceConfig {
    source(&format!(
        "name = \"loyalty\"\nconnection = {{ kind = \"http\", base_url = \"{base}/v1\"{connection} }}\n{IDENTITY}{facts}"
    ))
}

fn connect(s: &SourceConfig) -> Arc<dyn Connector> {
    build(s, std::path::Path::new(".")).0
}

fn member(key: &str) -> IdentityRecord {
    IdentityRecord {
        record: RecordRef::new("loyalty", key),
        kind: PartyKind::Person,
        relation: None,
        attrs: IdentityAttrs::default(),
        cursor: None,
        updated_at: None,
    }
}

fn lookup_of(keys: &[&str]) -> LookupRequest {
    LookupRequest {
        records: keys.iter().map(|k| member(k)).collect(),
        fact_sets: Vec::new(),
        since: None,
        limit: None,
    }
}

async fn scan_error(c: &dyn Connector) -> Error {
    match c.scan(None).await {
        Err(e) => e,
        Ok(_) => panic!("the scan should fail"),
    }
}

fn counting(hits: &Arc<AtomicUsize>) -> usize {
    hits.fetch_add(1, Ordering::SeqCst) + 1
}

fn page_no(q: &HashMap<String, String>) -> usize {
    q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1)
}

/// Seven members over three pages of three; page 2 holds an item that is not
/// an object and one without a key.
fn members_page(page: usize) -> Vec<Value> {
    match page {
        1 => vec![
            json!({"card_no": "L-1", "name": "Ann Lee", "contact": {"email": "ann@example.com"}, "updated_at": "2024-01-10T00:00:00Z"}),
            json!({"card_no": "L-2", "name": "Bob Ray", "updated_at": "2024-02-10T00:00:00Z"}),
            json!({"card_no": "L-3", "name": "Cy Doe", "updated_at": "2024-03-10T00:00:00Z"}),
        ],
        2 => vec![
            json!({"card_no": "L-4", "name": "Di Fox", "updated_at": "2024-04-10T00:00:00Z"}),
            json!(42),
            json!({"name": "No Key", "updated_at": "2024-04-11T00:00:00Z"}),
        ],
        _ => {
            vec![json!({"card_no": "L-5", "name": "Ed Gold", "updated_at": "2024-05-10T00:00:00Z"})]
        }
    }
}

#[tokio::test]
async fn scan_follows_next_pages_and_passes_the_cursor() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/v1/members",
            get(|State(seen): State<Seen>, Query(q): Params| async move {
                seen.lock().unwrap().push(q.clone());
                let page = page_no(&q);
                // The API filters coarsely (by month); kith filters exactly.
                let since = q.get("updated_since").map(|s| &s[..7]);
                let items: Vec<Value> = members_page(page)
                    .into_iter()
                    .filter(|m| {
                        since.is_none_or(|s| m["updated_at"].as_str().is_none_or(|u| &u[..7] >= s))
                    })
                    .collect();
                let next = (page < 3).then(|| {
                    let mut n = format!("/v1/members?page={}", page + 1);
                    if let Some(s) = q.get("updated_since") {
                        n.push_str(&format!("&updated_since={}", s.replace(':', "%3A")));
                    }
                    n
                });
                axum::Json(json!({"data": items, "next": next}))
            }),
        )
        .with_state(seen.clone());
    let base = serve(app).await;
    let s = http_source(
        &base,
        ", next = \"next\", since_param = \"updated_since\"",
        "",
    );
    let c = connect(&s);
    assert!(c.capabilities().incremental_scan);

    let (good, bad) = scan_all(c.as_ref(), None).await;
    let keys: Vec<&str> = good.iter().map(|r| r.record.key.as_str()).collect();
    assert_eq!(keys, vec!["L-1", "L-2", "L-3", "L-4", "L-5"]);
    assert_eq!(good[0].attrs.emails, vec!["ann@example.com"]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].location, "GET /members page 2 item 2");
    assert_eq!(bad[0].reason, "expected a JSON object, found a number");
    assert_eq!(bad[1].location, "GET /members page 2 item 3");
    assert!(bad[1].reason.contains("key"), "{}", bad[1].reason);
    assert_eq!(seen.lock().unwrap().len(), 3);

    seen.lock().unwrap().clear();
    let since = CursorValue::Time("2024-03-15T00:00:00Z".parse().unwrap());
    let (good, _) = scan_all(c.as_ref(), Some(since)).await;
    let keys: Vec<&str> = good.iter().map(|r| r.record.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["L-4", "L-5"],
        "L-3 is in the API's month but before the cursor"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|q| q.get("updated_since").map(String::as_str) == Some("2024-03-15T00:00:00Z")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn scan_follows_link_headers_and_cursor_tokens() {
    let app = Router::new()
        .route(
            "/v1/members",
            get(|Query(q): Params| async move {
                let page = page_no(&q);
                let mut headers = HeaderMap::new();
                if page < 3 {
                    let link = format!(
                        "</v1/members?page=1>; rel=\"first\", </v1/members?page={}>; rel=\"next\"",
                        page + 1
                    );
                    headers.insert("link", link.parse().unwrap());
                }
                (headers, axum::Json(Value::Array(members_page(page))))
            }),
        )
        .route(
            "/v1/by-cursor",
            get(|Query(q): Params| async move {
                let page = match q.get("cursor").map(String::as_str) {
                    None => 1,
                    Some("c2") => 2,
                    Some("c3") => 3,
                    Some(other) => panic!("unexpected cursor {other}"),
                };
                assert_eq!(q.get("status").map(String::as_str), Some("all"));
                let next = (page < 3).then(|| format!("c{}", page + 1));
                axum::Json(
                    json!({"result": {"members": members_page(page)}, "meta": {"cursor": next}}),
                )
            }),
        );
    let base = serve(app).await;
    let c = connect(&http_source(&base, "", ""));
    let (good, bad) = scan_all(c.as_ref(), None).await;
    assert_eq!((good.len(), bad.len()), (5, 2));
    assert!(!c.capabilities().incremental_scan);

    let mut s = http_source(
        &base,
        ", items = \"result.members\", next = \"meta.cursor\", page_param = \"cursor\"",
        "",
    );
    s.identity.from = "/by-cursor?status=all".into();
    let c = connect(&s);
    let (good, bad) = scan_all(c.as_ref(), None).await;
    assert_eq!((good.len(), bad.len()), (5, 2));
    assert_eq!(bad[0].location, "GET /by-cursor?status=all page 2 item 2");
}

const ENTITLEMENTS: &str = r#"
[facts.entitlements]
from = "/members/{key}/entitlements"
join = "card_no"
kind = "entitlement"
date = "valid_from"
[facts.membership]
from = "/members/{key}"
join = "card_no"
kind = "account"
fields = ["tier", "perks.lounge"]
"#;

#[tokio::test]
async fn indexed_lookup_asks_per_key_with_the_key_url_encoded() {
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .fallback(
            |State(paths): State<Arc<Mutex<Vec<String>>>>, uri: Uri| async move {
                let path = uri.path().to_string();
                paths.lock().unwrap().push(path.clone());
                match path.as_str() {
                    "/v1/members/A%201%2F2/entitlements" => axum::Json(json!({"data": [
                        {"card_no": "A 1/2", "benefit": "free coffee", "valid_from": "2024-01-01"},
                        "not an object",
                        {"card_no": "A 1/2", "benefit": "lounge", "valid_from": "2024-06-01"},
                    ]}))
                    .into_response(),
                    "/v1/members/A%201%2F2" => axum::Json(
                        json!({"card_no": "A 1/2", "tier": "gold", "perks": {"lounge": true}}),
                    )
                    .into_response(),
                    _ => (
                        StatusCode::NOT_FOUND,
                        axum::Json(json!({"error": "no such member"})),
                    )
                        .into_response(),
                }
            },
        )
        .with_state(paths.clone());
    let base = serve(app).await;
    let c = connect(&http_source(&base, "", ENTITLEMENTS));
    assert_eq!(c.capabilities().lookup, LookupCapability::Indexed);

    let found = c.lookup(&lookup_of(&["A 1/2", "L-404"])).await.unwrap();
    assert_eq!(found.stale_for, None);
    let mut benefits: Vec<&str> = found
        .facts
        .iter()
        .filter(|f| f.provenance.fact_set == "entitlements")
        .map(|f| f.value["benefit"].as_str().unwrap())
        .collect();
    benefits.sort();
    assert_eq!(benefits, vec!["free coffee", "lounge"]);
    assert!(found.facts.iter().all(|f| f.provenance.key == "A 1/2"));
    let membership: Vec<&Value> = found
        .facts
        .iter()
        .filter(|f| f.provenance.fact_set == "membership")
        .map(|f| &f.value)
        .collect();
    assert_eq!(
        membership,
        vec![&json!({"tier": "gold", "perks.lounge": true})]
    );
    assert_eq!(
        found.problems,
        vec![
            "GET /members/{key}/entitlements page 1 item 2: expected a JSON object, found a string"
        ]
    );
    let mut paths = paths.lock().unwrap().clone();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/v1/members/A%201%2F2",
            "/v1/members/A%201%2F2/entitlements",
            "/v1/members/L-404",
            "/v1/members/L-404/entitlements",
        ]
    );
}

#[tokio::test]
async fn an_indexed_fact_set_needs_the_key_placeholder() {
    let s = http_source(
        "http://127.0.0.1:9",
        "",
        "[facts.e]\nfrom = \"/entitlements\"\njoin = \"card_no\"\nkind = \"entitlement\"\n",
    );
    let ConnectorConfig::Http(cfg) = &s.connection else {
        unreachable!()
    };
    let err = kith_connect::http::build_with_env(&s, cfg, &|_| None)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("facts.e.from") && err.contains("{key}") && err.contains("scan"),
        "{err}"
    );
}

fn guarded() -> Router {
    Router::new().route(
        "/v1/members",
        get(|headers: HeaderMap| async move {
            let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
            let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
            if key == Some("s3cret") || bearer == Some("Bearer t0ken") {
                axum::Json(json!([{"card_no": "L-1", "name": "Ann"}])).into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "who are you?").into_response()
            }
        }),
    )
}

fn build_with(
    s: &SourceConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> kith_connect::Result<Arc<dyn Connector>> {
    let ConnectorConfig::Http(cfg) = &s.connection else {
        unreachable!()
    };
    kith_connect::http::build_with_env(s, cfg, env)
}

#[tokio::test]
async fn auth_sends_the_secret_from_the_environment() {
    let base = serve(guarded()).await;
    let by_header = http_source(
        &base,
        ", auth = { header = \"X-Api-Key\", env = \"LOYALTY_API_KEY\" }",
        "",
    );
    let env = |secret: &'static str| {
        move |name: &str| (name == "LOYALTY_API_KEY").then(|| secret.to_string())
    };

    let c = build_with(&by_header, &env("s3cret")).unwrap();
    let (good, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(good.len(), 1);
    c.check().await.unwrap();

    let c = build_with(&by_header, &env("wrong-secret")).unwrap();
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(err.to_lowercase().contains("unauthorized"), "{err}");
    assert!(err.contains("401") && err.contains("GET /members"), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");

    let err = build_with(&by_header, &|_| None).err().unwrap().to_string();
    assert!(
        err.contains("LOYALTY_API_KEY") && err.contains("not set"),
        "{err}"
    );

    // Through the process environment, as in production: a variable no test sets.
    let unset = http_source(
        &base,
        ", auth = { bearer_env = \"KITH_TEST_NEVER_SET_TOKEN\" }",
        "",
    );
    let ConnectorConfig::Http(cfg) = &unset.connection else {
        unreachable!()
    };
    let err = ConnectorConfig::Http(cfg.clone())
        .build(
            &unset,
            &kith_connect::ConnectCtx {
                file_index: Arc::new(kith_connect::MemoryFileIndex::default()),
            },
        )
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("KITH_TEST_NEVER_SET_TOKEN"),
        "{err}"
    );

    let bearer = http_source(&base, ", auth = { bearer_env = \"TOKEN\" }", "");
    let c = build_with(&bearer, &|n| (n == "TOKEN").then(|| "t0ken".into())).unwrap();
    let (good, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(good.len(), 1);

    let both = http_source(
        &base,
        ", auth = { header = \"X-Api-Key\", bearer_env = \"TOKEN\" }",
        "",
    );
    let err = build_with(&both, &|_| Some("x".into()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("bearer_env"), "{err}");
}

/// An API whose `/v1/members` answers `fail(n)` for the n-th request (from 1), or a member.
fn flaky(hits: Arc<AtomicUsize>, fail: fn(usize) -> Option<Response>) -> Router {
    Router::new()
        .route(
            "/v1/members",
            get(move |State(hits): State<Arc<AtomicUsize>>| async move {
                match fail(counting(&hits)) {
                    Some(r) => r,
                    None => axum::Json(json!([{"card_no": "L-1", "name": "Ann"}])).into_response(),
                }
            }),
        )
        .with_state(hits)
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(flaky(hits.clone(), |n| {
        (n <= 2).then(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }))
    .await;
    let c = connect(&http_source(&base, ", backoff = \"10ms\"", ""));
    let (good, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(good.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_server_that_keeps_failing_gives_up_after_the_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(flaky(hits.clone(), |_| {
        Some(StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }))
    .await;
    let c = connect(&http_source(&base, ", backoff = \"10ms\", retries = 2", ""));
    let err = scan_error(c.as_ref()).await;
    let text = err.to_string();
    assert!(
        text.contains("GET /members") && text.contains("500") && text.contains("3 attempts"),
        "{text}"
    );
    assert!(!err.is_unreachable());
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(flaky(hits.clone(), |n| {
        (n == 1).then(|| (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response())
    }))
    .await;
    let c = connect(&http_source(&base, "", ""));
    let started = Instant::now();
    let (good, _) = scan_all(c.as_ref(), None).await;
    let waited = started.elapsed();
    assert_eq!(good.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_longer_pause_than_allowed_fails_at_once_and_is_kept() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve(flaky(hits.clone(), |_| {
        Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", "60")]).into_response())
    }))
    .await;
    let c = connect(&http_source(&base, ", max_retry_after = \"1s\"", ""));
    let started = Instant::now();
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(
        err.contains("429") && err.contains("max_retry_after"),
        "{err}"
    );
    // The API asked for a minute of quiet: the next request does not go out.
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(err.contains("rate-limiting"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_named() {
    let base =
        serve(Router::new().route("/v1/members", get(|| async { "<html>maintenance</html>" })))
            .await;
    let c = connect(&http_source(&base, "", ""));
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(
        err.contains("GET /members page 1") && err.contains("not JSON"),
        "{err}"
    );
    let err = c.check().await.unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
}

#[tokio::test]
async fn a_hanging_api_times_out() {
    let base = serve(Router::new().route(
        "/v1/members",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "[]"
        }),
    ))
    .await;
    let c = connect(&http_source(&base, ", timeout = \"300ms\"", ""));
    let started = Instant::now();
    let err = scan_error(c.as_ref()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("timed out") && text.contains("300ms"),
        "{text}"
    );
    assert!(!err.is_unreachable());
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = connect(&http_source(
        &format!("http://127.0.0.1:{port}"),
        ", backoff = \"10ms\"",
        ENTITLEMENTS,
    ));
    let err = scan_error(c.as_ref()).await;
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("GET /members"), "{err}");
    assert!(c.check().await.unwrap_err().is_unreachable());
    assert!(
        c.lookup(&lookup_of(&["L-1"]))
            .await
            .unwrap_err()
            .is_unreachable()
    );
}

/// An API that can only list entitlements, and fails while `down` is set.
fn listing_only(down: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> Router {
    Router::new()
        .route(
            "/v1/entitlements",
            get(
                |State((down, hits)): State<(Arc<AtomicBool>, Arc<AtomicUsize>)>| async move {
                    counting(&hits);
                    if down.load(Ordering::SeqCst) {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    axum::Json(json!({"items": [
                        {"member": {"card": "L-1"}, "benefit": "free coffee", "valid_from": "2024-01-01"},
                        {"member": {"card": "L-2"}, "benefit": "lounge", "valid_from": "2024-02-01"},
                        {"member": {"card": "L-1"}, "benefit": "late checkout", "valid_from": "2024-03-01"},
                    ]}))
                    .into_response()
                },
            ),
        )
        .with_state((down, hits))
}

const LISTED: &str = r#"
[facts.entitlements]
from = "/entitlements"
join = "member.card"
kind = "entitlement"
date = "valid_from"
"#;

#[tokio::test]
async fn a_listing_only_api_is_filtered_and_served_from_cache_with_its_age() {
    let (down, hits) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let base = serve(listing_only(down.clone(), hits.clone())).await;
    let cached = connect(&http_source(
        &base,
        ", lookup = \"scan\", cache_ttl = \"1m\", retries = 0",
        LISTED,
    ));
    assert_eq!(cached.capabilities().lookup, LookupCapability::Scan);

    let first = cached.lookup(&lookup_of(&["L-1"])).await.unwrap();
    assert_eq!(first.stale_for, None);
    let mut benefits: Vec<&str> = first
        .facts
        .iter()
        .map(|f| f.value["benefit"].as_str().unwrap())
        .collect();
    benefits.sort();
    assert_eq!(benefits, vec!["free coffee", "late checkout"]);
    assert!(first.problems.is_empty(), "{:?}", first.problems);

    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = cached.lookup(&lookup_of(&["L-1"])).await.unwrap();
    assert!(
        second
            .stale_for
            .is_some_and(|age| age >= Duration::from_millis(20)),
        "{:?}",
        second.stale_for
    );
    assert_eq!(second.facts.len(), 2);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the listing is read once per TTL"
    );

    let uncached = connect(&http_source(
        &base,
        ", lookup = \"scan\", retries = 0",
        LISTED,
    ));
    let err = uncached.lookup(&lookup_of(&["L-1"])).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("GET /entitlements page 1: HTTP 500"),
        "{err}"
    );
}

#[tokio::test]
async fn an_indexed_lookup_falls_back_to_the_cache_when_the_api_fails() {
    let down = Arc::new(AtomicBool::new(false));
    let app = Router::new()
        .route(
            "/v1/members/{card}/entitlements",
            get(|State(down): State<Arc<AtomicBool>>| async move {
                if down.load(Ordering::SeqCst) {
                    return StatusCode::BAD_GATEWAY.into_response();
                }
                axum::Json(json!([{"benefit": "free coffee", "valid_from": "2024-01-01"}]))
                    .into_response()
            }),
        )
        .route(
            "/v1/members/{card}",
            get(|| async { axum::Json(json!({"tier": "gold"})) }),
        )
        .with_state(down.clone());
    let base = serve(app).await;
    let c = connect(&http_source(
        &base,
        ", cache_ttl = \"1m\", retries = 0",
        ENTITLEMENTS,
    ));
    let first = c.lookup(&lookup_of(&["L-1"])).await.unwrap();
    assert_eq!((first.facts.len(), first.stale_for), (2, None));

    down.store(true, Ordering::SeqCst);
    let second = c.lookup(&lookup_of(&["L-1"])).await.unwrap();
    assert_eq!(second.facts.len(), 2);
    assert!(second.stale_for.is_some());
    assert!(
        second
            .problems
            .iter()
            .any(|p| p.contains("GET /members/{key}/entitlements page 1: HTTP 502")),
        "{:?}",
        second.problems
    );
    // A key never read before has nothing to fall back on.
    let err = c.lookup(&lookup_of(&["L-2"])).await.unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
}

#[tokio::test]
async fn endless_or_looping_pages_stop() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/v1/members",
            get(
                |State(hits): State<Arc<AtomicUsize>>, Query(q): Params| async move {
                    counting(&hits);
                    let page = page_no(&q);
                    axum::Json(
                        json!({"data": [{"card_no": format!("L-{page}"), "name": "X"}],
                                  "next": format!("/v1/members?page={}", page + 1)}),
                    )
                },
            ),
        )
        .route(
            "/v1/loop",
            get(|| async { axum::Json(json!({"data": [], "next": "/v1/loop"})) }),
        )
        .with_state(hits.clone());
    let base = serve(app).await;
    let c = connect(&http_source(&base, ", next = \"next\", max_pages = 5", ""));
    let mut stream = c.scan(None).await.unwrap();
    let mut records = 0;
    let err = loop {
        match stream.next().await.expect("the scan ends with an error") {
            Ok(_) => records += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(records, 5);
    assert!(err.to_string().contains("max_pages"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 5);

    let mut s = http_source(&base, ", next = \"next\"", "");
    s.identity.from = "/loop".into();
    let err = scan_all_error(connect(&s).as_ref()).await;
    assert!(
        err.contains("page 2") && err.contains("already read"),
        "{err}"
    );
}

/// The error that ends a scan.
async fn scan_all_error(c: &dyn Connector) -> String {
    let mut stream = c.scan(None).await.unwrap();
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            return e.to_string();
        }
    }
    panic!("the scan should end with an error");
}

#[tokio::test]
async fn links_and_redirects_to_other_hosts_are_not_followed() {
    // The credentials go with every request; another host must not get them.
    let app = Router::new()
        .route(
            "/v1/members",
            get(|| async {
                axum::Json(json!({"data": [], "next": "https://elsewhere.example.com/steal"}))
            }),
        )
        .route(
            "/v1/moved",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "https://elsewhere.example.com/steal")],
                )
            }),
        )
        .route(
            "/v1/renamed",
            get(|| async { (StatusCode::MOVED_PERMANENTLY, [("location", "/v1/people")]) }),
        )
        .route(
            "/v1/people",
            get(|| async { axum::Json(json!([{"card_no": "L-1", "name": "Ann"}])) }),
        );
    let base = serve(app).await;
    let mut s = http_source(
        &base,
        ", next = \"next\", auth = { bearer_env = \"TOKEN\" }",
        "",
    );
    let c = build_with(&s, &|_| Some("t0ken".into())).unwrap();
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(err.contains("next page is on another host"), "{err}");

    s.identity.from = "/moved".into();
    let c = build_with(&s, &|_| Some("t0ken".into())).unwrap();
    let err = scan_error(c.as_ref()).await.to_string();
    assert!(
        err.contains("302") && err.contains("redirects to another host"),
        "{err}"
    );

    s.identity.from = "/renamed".into();
    let c = build_with(&s, &|_| Some("t0ken".into())).unwrap();
    let (good, _) = scan_all(c.as_ref(), None).await;
    assert_eq!(good.len(), 1, "a redirect on the same host is followed");
}
