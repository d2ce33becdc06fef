//! The router in process, over a real SQLite hub store with three records
//! (two of Ann's that share an e-mail address, one of Bob's): the document
//! against the routes, access, error shapes, merges and contributions.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use kith_hub::{Hub, HubSettings};
use kith_model::{IdentityAttrs, IdentityRecord, PartyId, PartyKind, RecordRef};
use kith_store::{ApiScope, HubStore, IndexEntry, SqliteStore};
use kith_web::{AppState, LogSender, ServerSettings};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

struct Fixture {
    app: Router,
    store: Arc<dyn HubStore>,
    read: String,
    contribute: String,
    ingest: String,
    ann: PartyId,
    bob: PartyId,
    _dir: tempfile::TempDir,
}

fn record(source: &str, key: &str, name: &str, email: &str) -> IndexEntry {
    let attrs = IdentityAttrs {
        full_name: Some(name.into()),
        emails: vec![email.into()],
        ..Default::default()
    };
    IndexEntry {
        identifiers: kith_hub::identifiers_of(&attrs, "44"),
        record: IdentityRecord {
            record: RecordRef::new(source, key),
            kind: PartyKind::Person,
            relation: None,
            attrs,
            cursor: None,
            updated_at: None,
        },
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn HubStore> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    store
        .upsert_records(
            &[
                record("billing", "1", "Ann Lee", "ann@example.com"),
                record("shop", "9", "Ann Lee", "ANN@example.com"),
                record("billing", "2", "Bob Stone", "bob@example.com"),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let hub = Hub::with_connectors(HubSettings::default(), Vec::new(), store.clone()).unwrap();
    hub.link(&()).await.unwrap();
    let party_of = |key: &str| {
        let store = store.clone();
        let r = RecordRef::new("billing", key);
        async move { store.link(&r).await.unwrap().unwrap().party }
    };
    let (ann, bob) = (party_of("1").await, party_of("2").await);
    assert_ne!(ann, bob);
    let key = |scope| {
        let store = store.clone();
        async move {
            kith_web::auth::keys::create(store.as_ref(), scope, "test")
                .await
                .unwrap()
                .0
        }
    };
    let (read, contribute, ingest) = (
        key(ApiScope::Read).await,
        key(ApiScope::Contribute).await,
        key(ApiScope::Ingest).await,
    );
    let state = AppState::new(
        Arc::new(hub),
        ServerSettings::default(),
        Arc::new(LogSender),
    );
    Fixture {
        app: routes().with_state(state),
        store,
        read,
        contribute,
        ingest,
        ann,
        bob,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Fixture {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        key: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        let req = match body {
            Some((content_type, text)) => req
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(text.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {uri}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, uri: &str, key: &str) -> Answer {
        self.call("GET", uri, Some(key), None).await
    }

    async fn post_json(&self, uri: &str, key: &str, body: Value) -> Answer {
        self.call(
            "POST",
            uri,
            Some(key),
            Some(("application/json", &body.to_string())),
        )
        .await
    }

    /// A documented path with its `{id}` filled in with a real party.
    fn concrete(&self, path: &str) -> String {
        path.replace("{id}", self.ann.as_str())
    }
}

fn error_of(a: &Answer) -> &str {
    a.json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {} {}", a.status, a.json))
}

// --- the document against the routes ---------------------------------------------

fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_document_lists_exactly_the_routes() {
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unlisted: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "in ROUTES but not in the document: {undocumented:?}"
    );
    assert!(
        unlisted.is_empty(),
        "in the document but not in ROUTES: {unlisted:?}"
    );
}

#[test]
fn every_operation_says_who_may_call_it_and_how_it_fails() {
    let doc = serde_json::to_value(openapi()).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.contains('\n')),
                "{method} {path} needs a one-line summary"
            );
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(
                operation_ids.insert(id.clone()),
                "{method} {path}: operationId {id:?} is missing or not unique"
            );
            let responses = op["responses"].as_object().unwrap();
            for (status, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description (OpenAPI requires one)"
                );
            }
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            let open = ["/openapi.json", "/healthz", "/readyz"].contains(&path.as_str());
            if open {
                assert_eq!(op["security"], json!([{}]), "{method} {path} needs no key");
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{method} {path} uses the global key"
                );
                for status in ["401", "403", "503"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    fn walk(v: &Value, refs: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    refs.push(r.clone());
                }
                m.values().for_each(|v| walk(v, refs));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(refs.len() > 20, "the document refers to its schemas");
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "{r} is not defined");
    }
    assert!(schemas.contains_key("View") && !schemas.contains_key("ViewDto"));
}

/// Routes reach the router only through `routes!` (documented by
/// construction); the one plain `.route` is the JSON 404 for unknown paths.
#[test]
fn routes_are_registered_only_through_the_documenting_macro() {
    let sources = [
        ("lib.rs", include_str!("lib.rs")),
        ("routes/mod.rs", include_str!("routes/mod.rs")),
        ("routes/meta.rs", include_str!("routes/meta.rs")),
        ("routes/parties.rs", include_str!("routes/parties.rs")),
        ("routes/search.rs", include_str!("routes/search.rs")),
        ("routes/matching.rs", include_str!("routes/matching.rs")),
        (
            "routes/contributions.rs",
            include_str!("routes/contributions.rs"),
        ),
    ];
    for (file, text) in sources {
        for needle in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(needle),
                "{file} registers routes with {needle}"
            );
        }
        let plain = text.matches(".route(").count();
        let allowed = if file == "lib.rs" { 1 } else { 0 };
        assert_eq!(
            plain, allowed,
            "{file} registers a route without documenting it"
        );
    }
    assert!(include_str!("lib.rs").contains(".route(\"/api/v1/{*rest}\", any(unknown_route))"));
}

#[tokio::test]
async fn every_documented_route_is_served_and_other_methods_are_refused() {
    let f = fixture().await;
    let all = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    for (method, path, server) in ROUTES {
        if *server != Server::Api {
            continue;
        }
        let uri = f.concrete(path);
        let body = (*method == "POST").then_some(("application/json", "{}"));
        let a = f.call(method, &uri, Some(&f.contribute), body).await;
        assert!(
            a.status != StatusCode::NOT_FOUND && a.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but answers {} {}",
            a.status,
            a.json
        );
        for other in all {
            if ROUTES.iter().any(|(m, p, _)| m == &other && p == path) {
                continue;
            }
            let a = f.call(other, &uri, Some(&f.contribute), None).await;
            assert_eq!(
                a.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{other} {path} is served but not documented"
            );
            assert!(error_of(&a).contains("not allowed"), "{}", a.json);
            assert!(
                a.headers.contains_key(header::ALLOW),
                "{other} {path}: 405 without Allow"
            );
        }
    }
    let a = f.get("/api/v1/nothing/here", &f.read).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(error_of(&a).contains("/openapi.json"));
    let a = f
        .get(&format!("/api/v1/parties/{}/bogus", f.ann), &f.read)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let f = fixture().await;
    let a = f.call("GET", "/openapi.json", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    assert!(a.json["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(a.json["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(a.json["paths"]["/api/v1/parties/{id}"]["get"].is_object());
    assert!(a.json["paths"]["/healthz"]["get"].is_object());
}

// --- access -----------------------------------------------------------------------

#[tokio::test]
async fn keys_and_scopes_are_checked_on_every_route() {
    let f = fixture().await;
    for (method, path, server) in ROUTES {
        if *server != Server::Api || *path == "/openapi.json" {
            continue;
        }
        let uri = f.concrete(path);
        let body = (*method == "POST").then_some(("application/json", "{}"));
        let a = f.call(method, &uri, None, body).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");
        error_of(&a);
        let a = f
            .call(
                method,
                &uri,
                Some("kith_0000000000000000000000000000000000000000"),
                body,
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        // Scope is checked before the body or query is looked at.
        let a = f.call(method, &uri, Some(&f.ingest), body).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "ingest key: {method} {path}"
        );
        error_of(&a);
        if *method == "POST" {
            let a = f.call(method, &uri, Some(&f.read), body).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "read key: {method} {path}");
            assert!(error_of(&a).contains("contribute"));
        }
    }
}

// --- reads, errors and the audit log ------------------------------------------------

#[tokio::test]
async fn reads_answer_json_and_are_audited() {
    let f = fixture().await;
    let a = f.get("/api/v1/parties?limit=1", &f.read).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["parties"].as_array().unwrap().len(), 1);
    let next = a.json["next_after"].as_str().unwrap().to_string();
    let a = f
        .get(&format!("/api/v1/parties?limit=1&after={next}"), &f.read)
        .await;
    assert_eq!(a.json["parties"].as_array().unwrap().len(), 1);
    assert!(a.json.get("next_after").is_none(), "two parties only");

    let a = f.get(&format!("/api/v1/parties/{}", f.ann), &f.read).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["party"], f.ann.as_str());
    assert_eq!(a.json["merged_into"], Value::Null);
    assert_eq!(a.json["view"]["records"].as_array().unwrap().len(), 2);

    let a = f.get("/api/v1/search?q=an%20leee", &f.read).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["hits"][0]["party"], f.ann.as_str());

    let a = f
        .get(&format!("/api/v1/parties/{}/links", f.ann), &f.read)
        .await;
    let links = a.json["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert!(
        links
            .iter()
            .all(|l| l["rule"] == "exact:email" && l["uncertain"] == false)
    );

    let a = f
        .get("/api/v1/explain?a=billing:1&b=billing:2", &f.read)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["same_party"], false);
    assert!(
        !a.json["explanation"]["comparisons"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let log = f.store.audit_log(Some(&f.ann), 100).await.unwrap();
    let actions: BTreeSet<&str> = log.iter().map(|e| e.action.as_str()).collect();
    for action in ["view", "search", "links", "explain"] {
        assert!(actions.contains(action), "no {action} entry in {actions:?}");
    }
    assert!(log.iter().all(|e| e.actor.starts_with("api-key:")));
}

#[tokio::test]
async fn bad_requests_say_which_field() {
    let f = fixture().await;
    let cases = [
        ("/api/v1/parties?limit=lots", "limit: "),
        ("/api/v1/parties?limit=0", "limit: "),
        ("/api/v1/parties?after=42", "after: "),
        ("/api/v1/parties?limt=5", "limt"),
        ("/api/v1/parties/42", "id: "),
        ("/api/v1/search", "q: "),
        ("/api/v1/search?q=ann&limit=1000", "limit: "),
        ("/api/v1/explain?a=billing:1", "b: "),
        ("/api/v1/explain?a=billing&b=billing:2", "a: "),
        ("/api/v1/review?status=maybe", "status: "),
    ];
    for (uri, field) in cases {
        let a = f.get(uri, &f.read).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}: {}", a.json);
        assert!(error_of(&a).contains(field), "{uri}: {}", a.json);
    }
    let timeline = format!("/api/v1/parties/{}/timeline", f.ann);
    for (query, field) in [
        ("?kind=Not%20A%20Kind", "kind: "),
        ("?source=nowhere", "source: "),
        ("?before=yesterday", "before: "),
    ] {
        let a = f.get(&format!("{timeline}{query}"), &f.read).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.json);
        assert!(error_of(&a).starts_with(field), "{query}: {}", a.json);
    }

    let a = f
        .get("/api/v1/parties/p_00000000000000000000000000", &f.read)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .get("/api/v1/explain?a=billing:1&b=billing:404", &f.read)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(error_of(&a).contains("billing:404"));

    let uri = format!("/api/v1/parties/{}/contributions", f.ann);
    let a = f
        .call(
            "POST",
            &uri,
            Some(&f.contribute),
            Some(("text/plain", "hello")),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&a).contains("application/json"));
    let a = f
        .call(
            "POST",
            &uri,
            Some(&f.contribute),
            Some(("application/json", "{not json")),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&a).starts_with("body: "), "{}", a.json);
    let a = f
        .post_json(
            &uri,
            &f.contribute,
            json!({"kind": "wish", "attribute": "x", "value": 1}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&a).contains("kind"), "{}", a.json);
    let a = f
        .post_json(&uri, &f.contribute, json!({"kind": "consent", "value": 1}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&a).contains("attribute"), "{}", a.json);
}

// --- writes ---------------------------------------------------------------------------

#[tokio::test]
async fn contributions_must_hang_on_the_partys_own_records() {
    let f = fixture().await;
    let uri = format!("/api/v1/parties/{}/contributions", f.ann);
    let a = f
        .post_json(
            &uri,
            &f.contribute,
            json!({"kind": "consent", "attribute": "newsletter", "value": false,
                   "anchor": {"type": "record", "source": "billing", "key": "2"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
    assert!(error_of(&a).contains("billing:2"));
    let a = f
        .post_json(
            &uri,
            &f.contribute,
            json!({"kind": "consent", "attribute": "newsletter", "value": false,
                   "anchor": {"type": "identifier", "value": "bob@example.com"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);

    // Ann's identifier, typed as people type it, is normalised and accepted.
    let a = f
        .post_json(
            &uri,
            &f.contribute,
            json!({"kind": "consent", "attribute": "newsletter", "value": false,
                   "anchor": {"type": "identifier", "value": "Ann@Example.com"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(
        a.json["anchor"],
        json!({"type": "identifier", "value": "email:ann@example.com"})
    );
    assert!(a.json["by"].as_str().unwrap().starts_with("api-key:"));
    let a = f
        .post_json(
            &uri,
            &f.contribute,
            json!({"kind": "correction", "attribute": "full_name", "value": "Ann Leigh"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    assert_eq!(a.json["anchor"]["type"], "record");

    let a = f.get(&uri, &f.read).await;
    assert_eq!(a.json["contributions"].as_array().unwrap().len(), 2);
    // Effective at once in the view, with provenance.
    let a = f.get(&format!("/api/v1/parties/{}", f.ann), &f.read).await;
    let consent = a.json["view"]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "consent")
        .expect("the consent is in the view");
    assert_eq!(consent["provenance"]["source"], "contributions");
    // Bob's party has none of it.
    let a = f
        .get(&format!("/api/v1/parties/{}/contributions", f.bob), &f.read)
        .await;
    assert!(a.json["contributions"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn accepting_a_pair_merges_and_the_old_id_answers_with_the_survivor() {
    let f = fixture().await;
    let a = f
        .post_json(
            "/api/v1/review",
            &f.contribute,
            json!({"a": "billing:1", "b": "billing:1", "decision": "accept"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = f
        .post_json(
            "/api/v1/review",
            &f.contribute,
            json!({"a": "billing:1", "b": "nowhere:1", "decision": "accept"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = f
        .post_json(
            "/api/v1/review",
            &f.contribute,
            json!({"a": "billing:1", "b": "billing:2", "decision": "accept", "by": "Jo at the CRM"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["status"], "accepted");
    assert!(
        a.json["decided_by"]
            .as_str()
            .unwrap()
            .ends_with("(Jo at the CRM)")
    );
    assert_eq!(a.json["link"]["merged"], 1);
    assert_eq!(a.json["a_party"], a.json["b_party"]);
    let survivor = a.json["a_party"].as_str().unwrap().to_string();
    let merged = if survivor == f.ann.as_str() {
        &f.bob
    } else {
        &f.ann
    };

    let a = f.get(&format!("/api/v1/parties/{merged}"), &f.read).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["party"], survivor.as_str());
    assert_eq!(a.json["requested"], merged.as_str());
    assert_eq!(a.json["merged_into"], survivor.as_str());
    assert_eq!(a.json["view"]["records"].as_array().unwrap().len(), 3);

    let a = f.get("/api/v1/review?status=accepted", &f.read).await;
    assert_eq!(a.json["pairs"].as_array().unwrap().len(), 1);
    assert_eq!(a.json["pairs"][0]["a_party"], survivor.as_str());
    let a = f.get("/api/v1/review?status=pending", &f.read).await;
    assert!(a.json["pairs"].as_array().unwrap().is_empty());
}
