//! HTTP JSON APIs: a SaaS platform's REST API read with `GET`.
//!
//! The identity entity is a listing (`from = "/members"`), read page by page.
//! A fact set is either a path template per key
//! (`from = "/members/{key}/entitlements"`, `lookup = "indexed"`) or, for an
//! API that can only list, a listing filtered by its `join` field
//! (`lookup = "scan"`). Nested objects in items are flattened to dotted names
//! (`{"consent": {"sms": true}}` → `consent.sms`), as in JSON-lines files.
//!
//! An API is a shared, flaky, rate-limited neighbour: every request has a
//! timeout, failures that may pass (connection refused, 5xx, 429) are retried
//! with exponential backoff, a `Retry-After` is honoured by all requests to
//! the API, and a listing stops after `max_pages` so a looping API cannot hang
//! kith. With `cache_ttl`, answers are kept for a while and served, marked
//! stale with their age, when the API fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use kith_model::{CursorValue, Quarantined};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LINK, RETRY_AFTER,
};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::file_index::index_key;
use crate::rows::{self, Row};
use crate::{
    Capabilities, Connector, Error, LookupCapability, LookupRequest, LookupResult, Result,
    ScanItem, ScanStream, SourceConfig,
};

/// Requests one lookup keeps in flight to the same API.
const IN_FLIGHT: usize = 4;

/// Item problems listed per response in a lookup; the rest are counted.
const PROBLEMS_PER_RESPONSE: usize = 10;

/// The placeholder in a fact set's `from` that the join value replaces.
const KEY: &str = "{key}";

/// Connection to an HTTP JSON API.
///
/// ```toml
/// connection = { kind = "http", base_url = "https://loyalty.example.com/v1",
///                auth = { header = "X-Api-Key", env = "LOYALTY_API_KEY" },
///                timeout = "5s", retries = 2, backoff = "200ms", max_retry_after = "10s",
///                lookup = "indexed", cache_ttl = "10m",
///                items = "data", next = "next", max_pages = 100, since_param = "updated_since" }
/// ```
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `https://api.example.com/v1`; `from` in the mapping is a path under it
    /// (`/members`), which may carry a query (`/members?status=all`).
    pub base_url: String,
    /// How kith proves who it is. The secret itself is read from the
    /// environment at start-up, never from this file, and never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,
    /// Time allowed for one request, from connecting to the last byte of the
    /// body (default `5s`). The source's own `timeout` bounds a whole lookup.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    pub timeout: Duration,
    /// Further attempts after a request failed in a way that may pass: the
    /// connection failed, HTTP 5xx, or 429 (default 2). A request that timed
    /// out is not repeated: an API that hangs once usually hangs again.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry, doubled before each further one (default `200ms`).
    #[serde(default = "default_backoff", with = "crate::duration::required")]
    pub backoff: Duration,
    /// Longest `Retry-After` (on 429 or 503) kith waits for (default `10s`).
    /// An API that asks for a longer pause gets it — no request goes out
    /// until then — but the requests fail at once instead of holding views up.
    #[serde(
        default = "default_max_retry_after",
        with = "crate::duration::required"
    )]
    pub max_retry_after: Duration,
    /// How fact sets are looked up: `indexed` (default) — each fact set's
    /// `from` is a path template holding `{key}`, which becomes the record's
    /// join value, URL-encoded (`/members/{key}/entitlements`); a 404 means no
    /// facts. `scan` — the API can only list: `from` is a listing, read in
    /// full and filtered by the fact set's `join` field (pair it with
    /// `cache_ttl` so a view does not read the whole listing).
    #[serde(default)]
    pub lookup: HttpLookup,
    /// Opt-in cache of lookup answers, kept this long (`"10m"`). With
    /// `lookup = "indexed"` the API is still asked every time, and the cached
    /// answer is served only when it fails; with `lookup = "scan"` a listing
    /// younger than this is served without asking. Either way the view shows
    /// the source as `stale` with the answer's age.
    #[serde(
        default,
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_ttl: Option<Duration>,
    /// Where the items are in a response that is an object, as a dotted path
    /// (`data`, `result.members`). By default a response is the item array
    /// itself, or an object with the array at `items`, `data` or `results`.
    /// In an indexed lookup, an object without an item array is the key's one
    /// item (`/members/{key}` answering `{"tier": "gold"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// Where a response object says the next page, as a dotted path (`next`,
    /// `links.next`): a URL, or a path on the API's host. Without `next`, the
    /// `Link: <…>; rel="next"` header is followed. A missing, null or empty
    /// value ends the listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// With `next`: the value there is a cursor token, sent as this query
    /// parameter on the listing's first URL (`page_param = "cursor"` →
    /// `/members?cursor=<token>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    /// Most pages read from one listing (default 100). An API whose next link
    /// never ends fails the read here instead of hanging kith.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
    /// Query parameter that passes the identity cursor to the listing
    /// (`updated_since`, as RFC 3339 or an integer), so incremental scans read
    /// only what changed. Without it, scans read everything and drop older items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_param: Option<String>,
}

/// How kith authenticates: `{ header = "X-Api-Key", env = "LOYALTY_API_KEY" }`
/// sends the variable's value in that header; `{ bearer_env = "LOYALTY_TOKEN" }`
/// sends `Authorization: Bearer <value>`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    /// The header that carries the secret (with `env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The environment variable holding the secret sent in `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The environment variable holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_env: Option<String>,
}

/// How an HTTP source answers fact lookups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpLookup {
    /// One request per join value, by a path template with `{key}`.
    #[default]
    Indexed,
    /// Read the fact set's listing and filter it by the join field.
    Scan,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(10)
}
fn default_max_pages() -> usize {
    100
}

/// A credential header value; its `Debug` never shows it.
#[derive(Clone)]
struct Secret(HeaderValue);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

pub(crate) fn build(source: &SourceConfig, config: &HttpConfig) -> Result<Arc<dyn Connector>> {
    build_with_env(source, config, &|name| std::env::var(name).ok())
}

/// Builds the connector with secrets read through `env` rather than from the
/// process environment — for programs that embed kith and keep secrets
/// elsewhere, and for tests, which cannot set variables safely.
pub fn build_with_env(
    source: &SourceConfig,
    config: &HttpConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Connector>> {
    let bad = |message: String| Error::Config {
        source_name: source.name.clone(),
        message,
    };
    let base = Url::parse(config.base_url.trim())
        .map_err(|e| bad(format!("base_url {:?} is not a URL: {e}", config.base_url)))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(bad(format!(
            "base_url {:?} must start with http:// or https://",
            config.base_url
        )));
    }
    if config.max_pages == 0 {
        return Err(bad("max_pages must be at least 1".into()));
    }
    if config.page_param.is_some() && config.next.is_none() {
        return Err(bad(
            "page_param needs next: the dotted path where a response holds the cursor token".into(),
        ));
    }
    for (field, path) in [
        ("items", &config.items),
        ("next", &config.next),
        ("page_param", &config.page_param),
        ("since_param", &config.since_param),
    ] {
        if path.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(bad(format!(
                "{field} must not be empty; leave it out instead"
            )));
        }
    }
    if source.identity.from.contains(KEY) {
        return Err(bad(format!(
            "identity.from {:?} is a listing and cannot hold {KEY}",
            source.identity.from
        )));
    }
    for (name, set) in &source.facts {
        let templated = set.from.contains(KEY);
        match config.lookup {
            HttpLookup::Indexed if !templated => {
                return Err(bad(format!(
                    "facts.{name}.from {:?} needs {KEY} where the join value goes \
                     (/members/{KEY}/entitlements), or set lookup = \"scan\" on the connection \
                     if the API can only list",
                    set.from
                )));
            }
            HttpLookup::Scan if templated => {
                return Err(bad(format!(
                    "facts.{name}.from {:?} holds {KEY}, but with lookup = \"scan\" it names a listing",
                    set.from
                )));
            }
            _ => {}
        }
    }
    let auth = match &config.auth {
        None => None,
        Some(a) => Some(auth_header(a, env).map_err(bad)?),
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("kith/", env!("CARGO_PKG_VERSION")))
        .timeout(config.timeout)
        // Connecting gets part of the budget so that a host that never answers
        // fails as a connect error (unreachable, retried) rather than racing
        // the request timeout.
        .connect_timeout(config.timeout * 3 / 4)
        // The credentials go with every request, so a redirect to another
        // host is not followed; the 3xx then fails the request by name.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let elsewhere = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() != attempt.url().origin());
            if elsewhere {
                attempt.stop()
            } else if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| bad(format!("cannot set up the HTTP client: {}", chain(&e))))?;
    Ok(Arc::new(HttpConnector {
        source: source.clone(),
        api: Arc::new(Api {
            source_name: source.name.clone(),
            config: config.clone(),
            base,
            client,
            auth,
            quiet_until: Mutex::new(None),
        }),
        cache: config.cache_ttl.map(Cache::new),
    }))
}

fn auth_header(
    auth: &HttpAuth,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(HeaderName, Secret), String> {
    let (name, var, bearer) = match (&auth.header, &auth.env, &auth.bearer_env) {
        (Some(h), Some(v), None) => {
            let name = HeaderName::from_bytes(h.trim().as_bytes())
                .map_err(|_| format!("auth.header {h:?} is not a valid header name"))?;
            (name, v, false)
        }
        (None, None, Some(v)) => (AUTHORIZATION, v, true),
        _ => {
            return Err(
                "auth is either { header = \"X-Api-Key\", env = \"VARIABLE\" } \
                        or { bearer_env = \"VARIABLE\" }"
                    .into(),
            );
        }
    };
    let secret = env(var)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("the environment variable {var} (auth) is not set or is empty"))?;
    let text = if bearer {
        format!("Bearer {secret}")
    } else {
        secret
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        format!(
            "the value of {var} (auth) cannot be sent in a header: it holds a control character"
        )
    })?;
    value.set_sensitive(true);
    Ok((name, Secret(value)))
}

pub(crate) struct HttpConnector {
    source: SourceConfig,
    api: Arc<Api>,
    cache: Option<Cache>,
}

/// What requests to one API share.
struct Api {
    source_name: String,
    config: HttpConfig,
    base: Url,
    /// One client, so connections to the API are reused.
    client: reqwest::Client,
    auth: Option<(HeaderName, Secret)>,
    /// Until when the API asked not to be called (`Retry-After`).
    quiet_until: Mutex<Option<Instant>>,
}

/// One response body, or a 404.
enum Fetched {
    Json {
        body: Value,
        link_next: Option<String>,
    },
    NotFound,
}

/// Why a request failed, and whether another attempt may help.
struct Failure {
    message: String,
    unreachable: bool,
    /// No answer within the configured time (reported as a timeout, not retried).
    timed_out: bool,
    retry: bool,
    /// The pause the API asked for (`Retry-After`).
    asked: Option<Duration>,
}

impl Failure {
    fn fatal(message: String) -> Self {
        Failure {
            message,
            unreachable: false,
            timed_out: false,
            retry: false,
            asked: None,
        }
    }
}

impl Api {
    fn http_error(&self, message: String) -> Error {
        Error::Http {
            source_name: self.source_name.clone(),
            message,
        }
    }

    /// The URL of a configured path.
    fn url_for(&self, path: &str) -> Result<Url> {
        let base = self.config.base_url.trim().trim_end_matches('/');
        let path = path.trim();
        let sep = if path.starts_with('/') { "" } else { "/" };
        Url::parse(&format!("{base}{sep}{path}")).map_err(|e| Error::Config {
            source_name: self.source_name.clone(),
            message: format!("{path:?} under {base:?} is not a URL: {e}"),
        })
    }

    /// One `GET`, retried while retrying may help. `what` names it in errors
    /// (`GET /members page 2`); the URL is left out, as it may hold personal data.
    async fn get(&self, url: &Url, what: &str) -> Result<Fetched> {
        let cfg = &self.config;
        let mut attempt: u32 = 0;
        loop {
            self.wait_if_asked(what).await?;
            let failure = match self.attempt(url, what).await {
                Ok(fetched) => return Ok(fetched),
                Err(f) => f,
            };
            if let Some(asked) = failure.asked {
                self.quiet_for(asked);
            }
            let tries = attempt + 1;
            let give_up = |f: Failure| {
                let message = if tries > 1 {
                    format!("{} ({tries} attempts)", f.message)
                } else {
                    f.message
                };
                if f.unreachable {
                    Error::Unreachable {
                        source_name: self.source_name.clone(),
                        message,
                    }
                } else if f.timed_out {
                    Error::TimedOut {
                        source_name: self.source_name.clone(),
                        message,
                    }
                } else {
                    self.http_error(message)
                }
            };
            if !failure.retry || attempt >= cfg.retries {
                return Err(give_up(failure));
            }
            let wait = match failure.asked {
                Some(asked) => {
                    if asked > cfg.max_retry_after {
                        let mut f = failure;
                        f.message = format!(
                            "{}; the API asks kith to wait {}, more than max_retry_after ({})",
                            f.message,
                            crate::duration::format(asked),
                            crate::duration::format(cfg.max_retry_after)
                        );
                        return Err(give_up(f));
                    }
                    asked
                }
                None => cfg.backoff.saturating_mul(1 << attempt.min(16)),
            };
            tracing::debug!(
                source = %self.source_name,
                request = what,
                attempt = tries,
                wait_ms = wait.as_millis() as u64,
                "retrying: {}",
                failure.message
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Waits out a pause the API asked for, or fails when it is longer than
    /// kith waits.
    async fn wait_if_asked(&self, what: &str) -> Result<()> {
        let until = *self.quiet_until.lock().expect("quiet_until lock");
        let Some(left) = until.and_then(|u| u.checked_duration_since(Instant::now())) else {
            return Ok(());
        };
        if left > self.config.max_retry_after {
            return Err(self.http_error(format!(
                "{what}: not sent: the API is rate-limiting kith for another {}",
                crate::duration::format(Duration::from_secs(left.as_secs().max(1)))
            )));
        }
        tokio::time::sleep(left).await;
        Ok(())
    }

    fn quiet_for(&self, pause: Duration) {
        let until = Instant::now() + pause;
        let mut q = self.quiet_until.lock().expect("quiet_until lock");
        if q.is_none_or(|u| u < until) {
            *q = Some(until);
        }
    }

    async fn attempt(&self, url: &Url, what: &str) -> std::result::Result<Fetched, Failure> {
        let mut req = self
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json");
        if let Some((name, Secret(value))) = &self.auth {
            req = req.header(name.clone(), value.clone());
        }
        let resp = req.send().await.map_err(|e| self.transport(e, url, what))?;
        let status = resp.status();
        if status.is_success() {
            let link_next = next_link(resp.headers());
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| self.transport(e, url, what))?;
            let body = serde_json::from_slice(&bytes)
                .map_err(|e| Failure::fatal(format!("{what}: the response is not JSON ({e})")))?;
            return Ok(Fetched::Json { body, link_next });
        }
        let message = format!("{what}: HTTP {status}");
        Err(match status {
            StatusCode::NOT_FOUND => return Ok(Fetched::NotFound),
            StatusCode::UNAUTHORIZED => Failure::fatal(format!(
                "{message}: the API refused kith's credentials (see auth)"
            )),
            StatusCode::FORBIDDEN => {
                Failure::fatal(format!("{message}: kith's credentials may not read this"))
            }
            s if s.is_redirection() => Failure::fatal(format!(
                "{message}: the API redirects to another host, which kith does not follow"
            )),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Failure {
                message,
                unreachable: false,
                timed_out: false,
                retry: true,
                asked: retry_after(resp.headers()),
            },
            s if s.is_server_error() => Failure {
                message,
                unreachable: false,
                timed_out: false,
                retry: true,
                asked: None,
            },
            _ => Failure::fatal(message),
        })
    }

    fn transport(&self, e: reqwest::Error, url: &Url, what: &str) -> Failure {
        let e = e.without_url();
        if e.is_connect() {
            // The innermost cause says it ("Connection refused"); the layers
            // above it only say that a request was being sent.
            let mut cause: &dyn std::error::Error = &e;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            let host = url.host_str().unwrap_or("?");
            let port = url.port_or_known_default().unwrap_or(0);
            Failure {
                message: format!("{what}: cannot connect to {host}:{port}: {cause}"),
                unreachable: true,
                timed_out: false,
                retry: true,
                asked: None,
            }
        } else if e.is_timeout() {
            Failure {
                timed_out: true,
                ..Failure::fatal(format!(
                    "{what}: no answer within {}",
                    crate::duration::format(self.config.timeout)
                ))
            }
        } else {
            // The connection broke mid-answer; a GET is safe to repeat.
            Failure {
                message: format!("{what}: the connection failed: {}", chain(&e)),
                unreachable: false,
                timed_out: false,
                retry: true,
                asked: None,
            }
        }
    }

    /// Where the page after `body` is, if anywhere.
    fn next_url(
        &self,
        body: &Value,
        link_next: Option<&str>,
        current: &Url,
        first: &Url,
    ) -> std::result::Result<Option<Url>, String> {
        let raw = match &self.config.next {
            Some(path) => match at_path(body, path) {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
                Some(Value::String(s)) => s.trim().to_string(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(format!(
                        "the next page at {path:?} is {}, not a link or cursor",
                        type_name(other)
                    ));
                }
            },
            None => match link_next {
                Some(l) => l.to_string(),
                None => return Ok(None),
            },
        };
        if self.config.next.is_some()
            && let Some(param) = &self.config.page_param
        {
            let mut url = first.clone();
            set_query(&mut url, param, &raw);
            return Ok(Some(url));
        }
        let url = current
            .join(&raw)
            .map_err(|e| format!("the next page {raw:?} is not a URL: {e}"))?;
        // The credentials go with every request, so a link elsewhere is not followed.
        if url.origin() != self.base.origin() {
            return Err(format!(
                "the next page is on another host ({}); kith only follows links on {}",
                url.origin().ascii_serialization(),
                self.base.origin().ascii_serialization()
            ));
        }
        Ok(Some(url))
    }
}

/// Reads a listing page by page, following next links up to `max_pages`.
struct Pager {
    api: Arc<Api>,
    /// `GET /members`, for locations and errors.
    what: String,
    first: Url,
    next: Option<Url>,
    page: usize,
    seen: HashSet<Url>,
    /// An indexed lookup: a 404 is no items, and a lone object is one item.
    by_key: bool,
}

impl Pager {
    fn new(api: Arc<Api>, what: String, first: Url, by_key: bool) -> Self {
        Pager {
            api,
            what,
            next: Some(first.clone()),
            first,
            page: 0,
            seen: HashSet::new(),
            by_key,
        }
    }

    fn location(&self, item: usize) -> String {
        format!("{} page {} item {item}", self.what, self.page)
    }

    /// The next page's items, or `None` after the last page.
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.page >= self.api.config.max_pages {
            return Err(self.api.http_error(format!(
                "{}: stopped after {} pages (max_pages) while the API still gave a next page",
                self.what, self.api.config.max_pages
            )));
        }
        self.page += 1;
        let what = format!("{} page {}", self.what, self.page);
        if !self.seen.insert(url.clone()) {
            return Err(self.api.http_error(format!(
                "{what}: the next page link leads back to a page already read"
            )));
        }
        let (body, link_next) = match self.api.get(&url, &what).await? {
            Fetched::NotFound if self.by_key && self.page == 1 => return Ok(Some(Vec::new())),
            Fetched::NotFound => {
                return Err(self
                    .api
                    .http_error(format!("{what}: HTTP {}", StatusCode::NOT_FOUND)));
            }
            Fetched::Json { body, link_next } => (body, link_next),
        };
        self.next = self
            .api
            .next_url(&body, link_next.as_deref(), &url, &self.first)
            .map_err(|m| self.api.http_error(format!("{what}: {m}")))?;
        items_of(body, self.api.config.items.as_deref(), self.by_key)
            .map(Some)
            .map_err(|m| self.api.http_error(format!("{what}: {m}")))
    }
}

/// Items of a whole listing, each read as a row or with why not.
struct Listing {
    items: Vec<(String, std::result::Result<Row, String>)>,
}

/// A listing as a lookup uses it: read now, or from the cache.
struct Served {
    listing: Arc<Listing>,
    /// The cached answer's age, when it came from the cache.
    stale_for: Option<Duration>,
    /// Why the API was not read live, when it failed.
    failure: Option<String>,
}

/// Answers by request URL, with when they were read.
struct Cache {
    ttl: Duration,
    state: Mutex<CacheState>,
}

struct CacheState {
    entries: HashMap<String, (Instant, Arc<Listing>)>,
    /// Expired entries are swept when the cache grows past this, so memory
    /// follows the keys viewed within the TTL rather than all keys ever viewed.
    sweep_at: usize,
}

impl Cache {
    fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            state: Mutex::new(CacheState {
                entries: HashMap::new(),
                sweep_at: 256,
            }),
        }
    }

    fn get(&self, key: &str) -> Option<(Arc<Listing>, Duration)> {
        let state = self.state.lock().expect("cache lock");
        let (at, listing) = state.entries.get(key)?;
        let age = at.elapsed();
        (age < self.ttl).then(|| (listing.clone(), age))
    }

    fn put(&self, key: String, listing: Arc<Listing>) {
        let mut state = self.state.lock().expect("cache lock");
        state.entries.insert(key, (Instant::now(), listing));
        if state.entries.len() >= state.sweep_at {
            let ttl = self.ttl;
            state.entries.retain(|_, (at, _)| at.elapsed() < ttl);
            state.sweep_at = (state.entries.len() * 2).max(256);
        }
    }
}

/// One request a lookup makes, and what it is for.
struct Job {
    url: Url,
    what: String,
}

impl HttpConnector {
    async fn read_listing(&self, url: Url, what: String) -> Result<Listing> {
        let by_key = self.api.config.lookup == HttpLookup::Indexed;
        let mut pager = Pager::new(self.api.clone(), what, url, by_key);
        let mut items = Vec::new();
        while let Some(page) = pager.next_page().await? {
            for (i, v) in page.into_iter().enumerate() {
                items.push((pager.location(i + 1), to_row(v)));
            }
        }
        Ok(Listing { items })
    }

    /// Reads a listing through the cache, when there is one.
    async fn serve(&self, job: &Job) -> Result<Served> {
        let fresh = |listing: Listing| Served {
            listing: Arc::new(listing),
            stale_for: None,
            failure: None,
        };
        let Some(cache) = &self.cache else {
            return self
                .read_listing(job.url.clone(), job.what.clone())
                .await
                .map(fresh);
        };
        let key = job.url.to_string();
        if self.api.config.lookup == HttpLookup::Scan
            && let Some((listing, age)) = cache.get(&key)
        {
            return Ok(Served {
                listing,
                stale_for: Some(age),
                failure: None,
            });
        }
        match self.read_listing(job.url.clone(), job.what.clone()).await {
            Ok(listing) => {
                let served = fresh(listing);
                cache.put(key, served.listing.clone());
                Ok(served)
            }
            Err(e) => match cache.get(&key) {
                Some((listing, age)) => Ok(Served {
                    listing,
                    stale_for: Some(age),
                    failure: Some(detail(&e)),
                }),
                None => Err(e),
            },
        }
    }
}

#[async_trait]
impl Connector for HttpConnector {
    fn source(&self) -> &SourceConfig {
        &self.source
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: match self.api.config.lookup {
                HttpLookup::Indexed => LookupCapability::Indexed,
                HttpLookup::Scan => LookupCapability::Scan,
            },
            incremental_scan: self.api.config.since_param.is_some(),
        }
    }

    async fn scan(&self, since: Option<CursorValue>) -> Result<ScanStream> {
        let source = self.source.clone();
        let mut first = self.api.url_for(&source.identity.from)?;
        if let (Some(param), Some(s)) = (&self.api.config.since_param, &since) {
            set_query(&mut first, param, &cursor_text(s));
        }
        let what = format!("GET {}", source.identity.from);
        let mut pager = Pager::new(self.api.clone(), what, first, false);
        // Read the first page now, so an API that is down fails the scan at
        // once rather than as the stream's first item.
        let mut page = pager.next_page().await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<ScanItem>>(1024);
        tokio::spawn(async move {
            let now = Utc::now();
            while let Some(items) = page {
                for (i, v) in items.into_iter().enumerate() {
                    let quarantine = |key: Option<String>, reason: String| {
                        ScanItem::Quarantined(Quarantined {
                            source: source.name.clone(),
                            location: pager.location(i + 1),
                            key,
                            reason,
                            seen_at: now,
                        })
                    };
                    let item = match to_row(v) {
                        Err(reason) => quarantine(None, reason),
                        Ok(row) => match rows::identity(&source, &row) {
                            Ok(rec) => {
                                if let (Some(s), Some(c)) = (&since, &rec.cursor)
                                    && c < s
                                {
                                    continue;
                                }
                                ScanItem::Record(rec)
                            }
                            Err(reason) => {
                                quarantine(rows::text(row.get(&source.identity.key)), reason)
                            }
                        },
                    };
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
                page = match pager.next_page().await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
            }
        });
        Ok(crate::channel_stream(rx))
    }

    async fn lookup(&self, request: &LookupRequest) -> Result<LookupResult> {
        let fetched_at = Utc::now();
        let indexed = self.api.config.lookup == HttpLookup::Indexed;
        let mut jobs: Vec<Job> = Vec::new();
        let mut job_of: HashMap<String, usize> = HashMap::new();
        // (fact set, job, join value → record keys); in a scan the values are
        // compared the way file indexes compare them.
        let mut plans: Vec<(&str, usize, HashMap<String, Vec<String>>)> = Vec::new();
        for (set_name, set) in &self.source.facts {
            if !request.fact_sets.is_empty() && !request.fact_sets.contains(set_name) {
                continue;
            }
            let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for rec in &request.records {
                for v in SourceConfig::join_values(set, rec) {
                    let v = if indexed {
                        v.trim().to_string()
                    } else {
                        index_key(&v, &set.on)
                    };
                    if v.is_empty() {
                        continue;
                    }
                    let keys = wanted.entry(v).or_default();
                    if !keys.contains(&rec.record.key) {
                        keys.push(rec.record.key.clone());
                    }
                }
            }
            let what = format!("GET {}", set.from);
            let mut job = |path: &str| -> Result<usize> {
                let url = self.api.url_for(path)?;
                Ok(*job_of.entry(url.to_string()).or_insert_with(|| {
                    jobs.push(Job {
                        url,
                        what: what.clone(),
                    });
                    jobs.len() - 1
                }))
            };
            if indexed {
                for (value, keys) in wanted {
                    let j = job(&set.from.replace(KEY, &encode(&value)))?;
                    plans.push((set_name, j, HashMap::from([(value, keys)])));
                }
            } else if !wanted.is_empty() {
                let j = job(&set.from)?;
                plans.push((set_name, j, wanted.into_iter().collect()));
            }
        }
        let reads: Vec<_> = jobs.iter().map(|j| self.serve(j)).collect();
        let served: Vec<Served> = futures::stream::iter(reads)
            .buffered(IN_FLIGHT)
            .try_collect()
            .await?;

        let mut result = LookupResult::default();
        for (job, s) in jobs.iter().zip(&served) {
            if let Some(age) = s.stale_for {
                result.stale_for = Some(result.stale_for.map_or(age, |a| a.max(age)));
            }
            if let Some(why) = &s.failure {
                result
                    .problems
                    .push(format!("{why}; served what was read before"));
            }
            let bad: Vec<String> = s
                .listing
                .items
                .iter()
                .filter_map(|(at, row)| row.as_ref().err().map(|e| format!("{at}: {e}")))
                .collect();
            let more = bad.len().saturating_sub(PROBLEMS_PER_RESPONSE);
            result
                .problems
                .extend(bad.into_iter().take(PROBLEMS_PER_RESPONSE));
            if more > 0 {
                result
                    .problems
                    .push(format!("{}: {more} more items could not be read", job.what));
            }
        }
        for (set_name, j, wanted) in &plans {
            let set = &self.source.facts[*set_name];
            for (_, row) in &served[*j].listing.items {
                let Ok(row) = row else { continue };
                let keys = if indexed {
                    wanted.values().next()
                } else {
                    rows::text(row.get(&set.join)).and_then(|v| wanted.get(&index_key(&v, &set.on)))
                };
                for key in keys.into_iter().flatten() {
                    result.facts.extend(rows::facts(
                        &self.source,
                        set_name,
                        set,
                        row,
                        key,
                        fetched_at,
                    ));
                }
            }
        }
        rows::apply_since_limit(&mut result.facts, request.since, request.limit);
        Ok(result)
    }

    async fn check(&self) -> Result<()> {
        let url = self.api.url_for(&self.source.identity.from)?;
        let what = format!("GET {}", self.source.identity.from);
        Pager::new(self.api.clone(), what, url, false)
            .next_page()
            .await
            .map(|_| ())
    }
}

/// An error's message without the `source …:` prefix the view already shows.
fn detail(e: &Error) -> String {
    match e {
        Error::Http { message, .. }
        | Error::Unreachable { message, .. }
        | Error::TimedOut { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// An error and its causes, which is where reqwest keeps the useful part
/// ("connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Percent-encodes a join value for a path segment or query: everything but
/// RFC 3986's unreserved characters, so `/`, `?`, `#` and spaces stay inside the value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sets one query parameter, replacing any of the same name.
fn set_query(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
}

fn cursor_text(c: &CursorValue) -> String {
    match c {
        CursorValue::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        CursorValue::Int(i) => i.to_string(),
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        for link in text.split(',') {
            let mut parts = link.split(';');
            let target = parts.next().unwrap_or_default().trim();
            let Some(target) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
                continue;
            };
            let is_next = parts.any(|p| {
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.to_string());
            }
        }
    }
    None
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (at.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.as_object()?.get(k))
}

fn take_at_path(v: &mut Value, path: &str) -> Option<Value> {
    path.split('.')
        .try_fold(v, |v, k| v.as_object_mut()?.get_mut(k))
        .map(Value::take)
}

/// The items of a response body.
fn items_of(
    mut body: Value,
    path: Option<&str>,
    lone_object: bool,
) -> std::result::Result<Vec<Value>, String> {
    if let Value::Array(items) = body {
        return Ok(items);
    }
    if !body.is_object() {
        return Err(format!(
            "expected a JSON array or object, found {}",
            type_name(&body)
        ));
    }
    let paths: &[&str] = match path {
        Some(p) => &[p],
        None => &["items", "data", "results"],
    };
    for p in paths {
        match at_path(&body, p) {
            Some(Value::Array(_)) => {
                let Some(Value::Array(items)) = take_at_path(&mut body, p) else {
                    unreachable!("checked to be an array just above");
                };
                return Ok(items);
            }
            Some(Value::Null) => return Ok(Vec::new()),
            _ => {}
        }
    }
    if lone_object {
        return Ok(vec![body]);
    }
    let wanted = match path {
        Some(p) => format!("{p:?}"),
        None => "\"items\", \"data\" or \"results\"".to_string(),
    };
    Err(format!(
        "expected a JSON array, or an object with the item array at {wanted} (set items)"
    ))
}

fn to_row(v: Value) -> std::result::Result<Row, String> {
    match v {
        Value::Object(obj) => {
            let mut row = Row::new();
            crate::rows::flatten("", obj, &mut row);
            Ok(row)
        }
        other => Err(format!(
            "expected a JSON object, found {}",
            type_name(&other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut v = HeaderValue::from_static("Bearer hunter2");
        v.set_sensitive(true);
        let shown = format!("{:?}", Some((AUTHORIZATION, Secret(v))));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn keys_are_encoded_whole() {
        assert_eq!(encode("a b/c?d#e"), "a%20b%2Fc%3Fd%23e");
        assert_eq!(encode("Ann.Lee-1_~"), "Ann.Lee-1_~");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=3>; rel=\"next last\"",
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://x/a?page=3"));
        h.insert(LINK, HeaderValue::from_static("<https://x/a>; rel=prev"));
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let soon = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&soon).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn items_are_found_where_apis_put_them() {
        assert_eq!(items_of(json!([1, 2]), None, false).unwrap().len(), 2);
        assert_eq!(
            items_of(json!({"data": [{"a": 1}], "next": null}), None, false).unwrap(),
            vec![json!({"a": 1})]
        );
        assert_eq!(
            items_of(
                json!({"result": {"members": [1]}}),
                Some("result.members"),
                false
            )
            .unwrap(),
            vec![json!(1)]
        );
        assert!(
            items_of(json!({"results": null}), None, false)
                .unwrap()
                .is_empty()
        );
        let lone = json!({"tier": "gold"});
        assert_eq!(
            items_of(lone.clone(), None, true).unwrap(),
            vec![lone.clone()]
        );
        assert!(
            items_of(lone, None, false)
                .unwrap_err()
                .contains("\"items\", \"data\" or \"results\"")
        );
        assert!(
            items_of(json!("ok"), None, true)
                .unwrap_err()
                .contains("a string")
        );
    }

    #[test]
    fn nested_objects_become_dotted_names() {
        let row = to_row(json!({"id": 1, "consent": {"sms": true, "channels": ["x"]}})).unwrap();
        assert_eq!(row["consent.sms"], json!(true));
        assert_eq!(row["consent.channels"], json!(["x"]));
        assert!(to_row(json!(7)).unwrap_err().contains("a number"));
    }

    #[test]
    fn query_parameters_are_replaced() {
        let mut u = Url::parse("http://h/m?cursor=a&x=1").unwrap();
        set_query(&mut u, "cursor", "b c");
        assert_eq!(u.as_str(), "http://h/m?x=1&cursor=b+c");
    }
}
