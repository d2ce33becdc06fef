//! `kith serve`: the JSON API, the customer portal and the staff console on one listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use kith_hub::Hub;
use kith_web::{AppState, CodeSender};

use crate::config::Config;

/// The largest request body any route accepts (forms and JSON); ingest sets its own.
const BODY_LIMIT: usize = 512 * 1024;

/// Every part's routes over one state, with the headers every response carries.
pub fn router(
    state: AppState,
    events: Option<(Arc<kith_ingest::EventLog>, Arc<tokio::sync::Notify>)>,
    feed: kith_feed::Feed,
) -> Router {
    let ingest = match events {
        Some((log, wake)) => kith_ingest::routes(state.clone(), log, wake),
        None => Router::new(),
    };
    Router::new()
        .merge(kith_web::routes())
        .merge(ingest)
        .merge(kith_feed::routes(feed))
        .merge(kith_api::routes())
        .merge(kith_portal::routes())
        .merge(kith_console::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Pages are only ever framed, scripted and styled by kith itself.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

/// A server that is listening: its address and the task serving it.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Binds `listen` and serves until the process ends.
pub async fn start(
    config: &Config,
    hub: Arc<Hub>,
    events: Option<Arc<kith_ingest::EventLog>>,
    sender: Arc<dyn CodeSender>,
    listen: SocketAddr,
) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| {
            format!(
                "kith serve cannot listen on {listen} (choose another with --listen, or port 0)"
            )
        })?;
    let addr = listener.local_addr()?;
    let state = AppState::new(hub.clone(), config.server.clone(), sender);
    // Expired sessions are forgotten hourly; an expired one is refused anyway.
    let store = state.store().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = store.purge_sessions(chrono::Utc::now()).await {
                tracing::warn!("could not purge expired sessions: {e}");
            }
        }
    });
    let events = events.map(|log| {
        let wake = Arc::new(tokio::sync::Notify::new());
        kith_ingest::spawn_resolver(
            hub.clone(),
            log.clone(),
            wake.clone(),
            Duration::from_millis(500),
        );
        (log, wake)
    });
    // The change feed: its SSE routes, and the webhooks and NATS publisher
    // configured in [changes]. A missing webhook secret stops serve here.
    let feed = kith_feed::Feed::watch(hub.store().clone()).await?;
    let started = kith_feed::start(&config.changes, &feed).await?;
    for name in &started.webhooks {
        tracing::info!("change feed: delivering to webhook {name}");
    }
    if let Some(nats) = &started.nats {
        tracing::info!("change feed: publishing to NATS {nats}");
    }
    let app = router(state, events, feed);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Ok(Running { addr, task })
}
