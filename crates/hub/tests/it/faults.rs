//! Sources that fail during a view — an API answering 500 or garbage or
//! nothing, database servers that are down — each show as that source's
//! status with a reason, while the other sources answer in time; an API
//! read before is served from its cache marked `stale`, and its rate limits
//! are waited out or kept.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use kith_connect::SourceConfig;
use kith_hub::{Hub, HubSettings, SourceStatus, SyncOptions};

use crate::{source_of, world};

/// An API's `/people` listing: Ann.
fn with_people() -> Router {
    Router::new().route(
        "/people",
        get(|| async {
            axum::Json(serde_json::json!([{"id": "h1", "email": "ann.lee@example.com"}]))
        }),
    )
}

/// Serves `app` on a free loopback port.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An API whose `/people` listing works and whose fact endpoints misbehave.
async fn bad_api() -> std::net::SocketAddr {
    let app = with_people()
        .route(
            "/500/{key}",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route("/garbage/{key}", get(|| async { "{ this is not json" }))
        .route(
            "/hang/{key}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "[]"
            }),
        );
    serve(app).await
}

fn http_source(name: &str, addr: std::net::SocketAddr, path: &str) -> SourceConfig {
    http_source_with(
        name,
        addr,
        "",
        &format!(
            "[facts.things]\nfrom = \"/{path}/{{key}}\"\njoin = \"id\"\nkind = \"interaction\""
        ),
    )
}

/// An HTTP source listing `/people`, with more connection settings and its
/// fact sets as TOML.
fn http_source_with(
    name: &str,
    addr: std::net::SocketAddr,
    extra_connection: &str,
    facts: &str,
) -> SourceConfig {
    toml::from_str(&format!(
        r#"
        name = "{name}"
        connection = {{ kind = "http", base_url = "http://{addr}", timeout = "5s", retries = 1, backoff = "10ms"{extra_connection} }}
        [identity]
        from = "/people"
        key = "id"
        attributes = {{ email = "email" }}
        {facts}
        "#
    ))
    .unwrap()
}

fn server_source(name: &str, kind: &str, url: &str) -> SourceConfig {
    toml::from_str(&format!(
        r#"
        name = "{name}"
        connection = {{ kind = "{kind}", url = "{url}", connect_timeout = "1s" }}
        [identity]
        from = "customers"
        key = "id"
        attributes = {{ email = "email" }}
        [facts.orders]
        from = "orders"
        join = "customer_id"
        kind = "transaction"
        "#
    ))
    .unwrap()
}

#[tokio::test]
async fn failing_apis_and_servers_are_statuses_while_the_rest_answer() {
    let w = world().await;
    let addr = bad_api().await;
    let mut sources = w.sources.clone();
    sources.push(http_source("api500", addr, "500"));
    sources.push(http_source("apijunk", addr, "garbage"));
    sources.push(http_source("apihang", addr, "hang"));
    // Closed ports: nothing listens on 127.0.0.1:1 or :2.
    sources.push(server_source(
        "pgdown",
        "postgres",
        "postgres://kith@127.0.0.1:1/billing",
    ));
    sources.push(server_source(
        "mydown",
        "mysql",
        "mysql://kith@127.0.0.1:2/support",
    ));
    let settings = HubSettings {
        view_timeout: Duration::from_millis(800),
        ..Default::default()
    };
    let hub = Hub::new(settings, &sources, w.store.clone()).unwrap();
    let report = hub.sync(SyncOptions::default(), &()).await.unwrap();
    let failed: Vec<&str> = report.failed_sources().map(|s| s.source.as_str()).collect();
    assert_eq!(
        failed,
        vec!["pgdown", "mydown"],
        "the servers that are down fail their sync"
    );

    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let started = Instant::now();
    let v = hub.view(&ann).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "the view waited {elapsed:?}"
    );
    let status = |name: &str| {
        let s = source_of(&v, name);
        (s.status, s.reason.clone().unwrap_or_default())
    };
    let (s, why) = status("api500");
    assert_eq!(s, SourceStatus::Error, "{why}");
    assert!(why.contains("500"), "{why}");
    let (s, why) = status("apijunk");
    assert_eq!(s, SourceStatus::Error, "{why}");
    assert!(why.contains("not JSON"), "{why}");
    let (s, why) = status("apihang");
    assert!(
        matches!(s, SourceStatus::TimedOut | SourceStatus::Error),
        "{s:?} {why}"
    );
    assert!(why.contains("within") || why.contains("timed out"), "{why}");
    // The database servers that are down hold no records of Ann, so they are
    // listed as not linked rather than silently missing.
    assert_eq!(status("pgdown").0, SourceStatus::NotLinked);
    assert_eq!(status("billing").0, SourceStatus::Ok);
    assert_eq!(status("shop").0, SourceStatus::Ok);
    assert_eq!(status("marketing").0, SourceStatus::Ok);
    assert_eq!(v.facts_of("transaction").count(), 3);
}

#[tokio::test]
async fn a_database_server_that_is_down_is_unreachable_in_the_view() {
    let w = world().await;
    w.hub().sync(SyncOptions::default(), &()).await.unwrap();
    // Billing's records are in the index; now its server cannot be reached:
    // the same source, served by PostgreSQL and MariaDB servers that are down.
    for (kind, url) in [
        ("postgres", "postgres://kith@127.0.0.1:1/billing"),
        ("mysql", "mysql://kith@127.0.0.1:2/billing"),
    ] {
        let mut sources = w.sources.clone();
        let mut down = server_source("billing", kind, url);
        down.identity = sources[0].identity.clone();
        sources[0] = down;
        let hub = Hub::new(HubSettings::default(), &sources, w.store.clone()).unwrap();
        let ann = hub.find_party("ann.lee@example.com").await.unwrap();
        let started = Instant::now();
        let v = hub.view(&ann).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        let billing = source_of(&v, "billing");
        assert_eq!(
            billing.status,
            SourceStatus::Unreachable,
            "{kind}: {billing:?}"
        );
        let reason = billing.reason.as_deref().unwrap();
        assert!(reason.contains("127.0.0.1"), "{reason}");
        assert!(!reason.contains("password"), "{reason}");
        assert_eq!(source_of(&v, "shop").status, SourceStatus::Ok);
    }
}

/// How the loyalty API below answers a fact request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mood {
    Fine,
    Down,
    /// 429 with `Retry-After: 1` once, then fine.
    BusyOnce,
    /// 429 with `Retry-After: 60`.
    BusyLong,
}

/// A loyalty API whose fact endpoint answers as `mood` says.
async fn moody_api(mood: std::sync::Arc<std::sync::Mutex<Mood>>) -> std::net::SocketAddr {
    use axum::response::IntoResponse;
    let app = with_people().route(
        "/perks/{key}",
        get(move || {
            let mood = mood.clone();
            async move {
                let now = *mood.lock().unwrap();
                match now {
                    Mood::Fine => axum::Json(serde_json::json!([
                        {"perk": "free coffee", "at": "2024-03-01"}
                    ]))
                    .into_response(),
                    Mood::Down => (StatusCode::BAD_GATEWAY, "down").into_response(),
                    Mood::BusyOnce | Mood::BusyLong => {
                        if now == Mood::BusyOnce {
                            *mood.lock().unwrap() = Mood::Fine;
                        }
                        let wait = if now == Mood::BusyOnce { "1" } else { "60" };
                        (StatusCode::TOO_MANY_REQUESTS, [("retry-after", wait)]).into_response()
                    }
                }
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn an_api_that_fails_is_served_stale_from_its_cache_and_its_rate_limits_are_kept() {
    let w = world().await;
    let mood = std::sync::Arc::new(std::sync::Mutex::new(Mood::Fine));
    let addr = moody_api(mood.clone()).await;
    let loyalty = |cache: &str| {
        http_source_with(
            "loyalty",
            addr,
            &format!(", max_retry_after = \"2s\"{cache}"),
            "[facts.perks]\nfrom = \"/perks/{key}\"\njoin = \"id\"\nkind = \"entitlement\"\ndate = \"at\"",
        )
    };
    let hub_with = |source: SourceConfig| {
        let mut sources = w.sources.clone();
        sources.push(source);
        Hub::new(HubSettings::default(), &sources, w.store.clone()).unwrap()
    };
    let hub = hub_with(loyalty(", cache_ttl = \"10m\""));
    hub.sync(SyncOptions::default(), &()).await.unwrap();
    let ann = hub.find_party("ann.lee@example.com").await.unwrap();
    let loyalty_of = |v: &kith_hub::View| source_of(v, "loyalty").clone();
    let answered = |v: &kith_hub::View| {
        assert_eq!(
            loyalty_of(v).status,
            SourceStatus::Ok,
            "{:?}",
            loyalty_of(v)
        );
        assert_eq!(v.facts_of("entitlement").count(), 1);
    };

    let v = hub.view(&ann).await.unwrap();
    answered(&v);

    // The API goes down: the view shows what was read before, marked stale
    // with its age and why it was not read now.
    *mood.lock().unwrap() = Mood::Down;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let v = hub.view(&ann).await.unwrap();
    let l = loyalty_of(&v);
    assert_eq!(l.status, SourceStatus::Stale, "{l:?}");
    let reason = l.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("served from cache") && reason.contains("1s old"),
        "{reason}"
    );
    assert!(l.problems.iter().any(|p| p.contains("HTTP 502")), "{l:?}");
    assert_eq!(v.facts_of("entitlement").count(), 1);
    assert_eq!(source_of(&v, "billing").status, SourceStatus::Ok);

    // Without a cache, a 429 asking for a second's pause is waited out (a
    // retry, as `retries` allows) inside the view's time; one asking for a
    // minute fails at once.
    let hub = hub_with(loyalty(""));
    *mood.lock().unwrap() = Mood::BusyOnce;
    let started = Instant::now();
    let v = hub.view(&ann).await.unwrap();
    let took = started.elapsed();
    answered(&v);
    assert!(took >= Duration::from_millis(950), "{took:?}");

    *mood.lock().unwrap() = Mood::BusyLong;
    let started = Instant::now();
    let v = hub.view(&ann).await.unwrap();
    let l = loyalty_of(&v);
    assert_eq!(l.status, SourceStatus::Error, "{l:?}");
    let reason = l.reason.unwrap_or_default();
    assert!(
        reason.contains("429") && reason.contains("max_retry_after"),
        "{reason}"
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(v.facts_of("entitlement").count(), 0);
}
