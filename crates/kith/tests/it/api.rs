//! The JSON API on the real `kith serve`: keys made with `kith keys create`,
//! scopes, revocation, the demo customer's view, search, timeline, links,
//! match evidence, review and contributions, and the OpenAPI document
//! against the routes actually served.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Served;

/// A new API key of `scope`, and its id (from `kith keys create`).
fn new_key(s: &Served, scope: &str) -> (String, i64) {
    let out = s.kith(&["keys", "create", "--scope", scope, "--label", "api test"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        key.starts_with("kith_"),
        "the key is printed on stdout: {key:?}"
    );
    let id = stderr
        .split_whitespace()
        .skip_while(|w| *w != "key")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("the key's id is reported: {stderr}"));
    (key, id)
}

struct Api {
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no JSON error in {} {}", self.status, self.json))
    }
}

impl Api {
    fn new(s: &Served) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: s.base.clone(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        // The health checks answer text; everything under /api/v1 answers JSON
        // (checked where it matters by `Answer::error` and field lookups).
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.send("GET", path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send("POST", path, Some(key), Some(body)).await
    }

    /// The party the demo customer's e-mail address finds.
    async fn customer(&self, s: &Served, key: &str) -> String {
        let a = self
            .get(&format!("/api/v1/search?q={}", s.customer_email), key)
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        a.json["hits"][0]["party"]
            .as_str()
            .expect("the customer is found by e-mail")
            .to_string()
    }
}

/// `(METHOD, path)` of every operation in an OpenAPI document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn api_keys_scopes_and_revocation() {
    let s = Served::start(200, "");
    let api = Api::new(&s);
    let (read, read_id) = new_key(&s, "read");
    let (contribute, _) = new_key(&s, "contribute");
    let (ingest, _) = new_key(&s, "ingest");

    // No key, a wrong key: 401 with the scheme to use.
    let a = api.send("GET", "/api/v1/parties", None, None).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    assert!(a.error().contains("Authorization: Bearer"), "{}", a.json);
    let a = api
        .get(
            "/api/v1/parties",
            "kith_0123456789abcdef0123456789abcdef01234567",
        )
        .await;
    assert_eq!(a.status, 401);
    a.error();

    // Every route answers a read key; an ingest key reaches none of them.
    let party = api.customer(&s, &read).await;
    for (method, path, server) in kith_api::ROUTES {
        if *server != kith_api::Server::Api || *path == "/openapi.json" {
            continue;
        }
        let uri = path.replace("{id}", &party);
        let body = (*method == "POST").then(|| json!({}));
        let a = api.send(method, &uri, Some(&ingest), body.clone()).await;
        assert_eq!(a.status, 403, "ingest key: {method} {path}: {}", a.json);
        assert!(a.error().contains("scope"));
        if *method == "GET" {
            let query = match *path {
                "/api/v1/search" => "?q=ellison",
                "/api/v1/explain" => "?a=billing:1&b=billing:2",
                _ => "",
            };
            let a = api.get(&format!("{uri}{query}"), &read).await;
            assert!(
                a.status == 200 || (*path == "/api/v1/explain" && a.status == 404),
                "read key: GET {path}: {} {}",
                a.status,
                a.json
            );
        }
    }

    // Contributions: a read key may not add one, a contribute key may.
    let uri = format!("/api/v1/parties/{party}/contributions");
    let consent = json!({"kind": "consent", "attribute": "newsletter", "value": false});
    let a = api.post(&uri, &read, consent.clone()).await;
    assert_eq!(a.status, 403, "{}", a.json);
    assert!(a.error().contains("contribute"));
    let a = api.post(&uri, &contribute, consent).await;
    assert_eq!(a.status, 201, "{}", a.json);
    assert!(a.json["by"].as_str().unwrap().starts_with("api-key:"));

    // The read key's use is recorded.
    let out = s.kith(&["keys", "list", "--json"]);
    assert!(out.status.success());
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == read_id)
        .expect("the key is listed");
    assert!(
        mine["last_used_at"].is_string(),
        "last_used_at after use: {mine}"
    );
    assert!(
        !mine.to_string().contains(&read),
        "the key itself is never listed"
    );

    // Revoked at once: the very next request fails.
    let a = api.get("/api/v1/parties?limit=1", &read).await;
    assert_eq!(a.status, 200);
    let out = s.kith(&["keys", "revoke", &read_id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = api.get("/api/v1/parties?limit=1", &read).await;
    assert_eq!(a.status, 401, "{}", a.json);
    assert!(a.error().contains("revoked"));
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    // The other keys still work.
    let a = api.get("/api/v1/parties?limit=1", &contribute).await;
    assert_eq!(a.status, 200);

    // Keys never reach the server's log.
    let log = s.log();
    for k in [&read, &contribute, &ingest] {
        assert!(!log.contains(k.as_str()), "an API key is in the server log");
    }
}

#[tokio::test]
async fn api_reads_writes_and_documents_the_demo() {
    let s = Served::start(200, "");
    let api = Api::new(&s);
    let (read, _) = new_key(&s, "read");
    let (contribute, _) = new_key(&s, "contribute");
    let party = api.customer(&s, &read).await;

    // Search is typo-tolerant: a misspelt name finds her.
    let a = api
        .get("/api/v1/search?q=Margret%20Elison&limit=5", &read)
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let hits = a.json["hits"].as_array().unwrap();
    assert!(
        hits.iter().any(|h| h["party"] == party.as_str()),
        "{}",
        a.json
    );

    // Her view, with provenance on every fact and a status for every source.
    let a = api.get(&format!("/api/v1/parties/{party}"), &read).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["party"], party.as_str());
    assert_eq!(a.json["merged_into"], Value::Null);
    let view = &a.json["view"];
    let facts = view["facts"].as_array().unwrap();
    assert!(facts.len() > 5, "{view}");
    for f in facts {
        let p = &f["provenance"];
        for field in ["source", "key", "fact_set", "fetched_at"] {
            assert!(p[field].is_string(), "fact without provenance {field}: {f}");
        }
    }
    let billing = view["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "billing")
        .expect("billing is listed");
    assert_eq!(billing["status"], "ok");
    assert!(
        view["profile"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["best_source"].is_string() && p["values"][0]["provenance"].is_object())
    );

    // The timeline is newest first, filters by kind, and pages without gaps.
    let tl = format!("/api/v1/parties/{party}/timeline");
    let all = api.get(&format!("{tl}?limit=1000"), &read).await;
    assert_eq!(all.status, 200, "{}", all.json);
    let items = all.json["items"].as_array().unwrap().clone();
    assert!(items.len() >= 5, "{}", all.json);
    let times: Vec<&str> = items.iter().map(|i| i["at"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        parsed.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let cases = api.get(&format!("{tl}?kind=case&limit=1000"), &read).await;
    let case_items = cases.json["items"].as_array().unwrap();
    assert!(!case_items.is_empty(), "she has support cases");
    assert!(case_items.iter().all(|i| i["kind"] == "case"));
    assert_eq!(
        case_items.len(),
        items.iter().filter(|i| i["kind"] == "case").count()
    );
    let mut paged = Vec::new();
    let mut next = String::new();
    loop {
        let a = api.get(&format!("{tl}?limit=3{next}"), &read).await;
        assert_eq!(a.status, 200, "{}", a.json);
        paged.extend(a.json["items"].as_array().unwrap().iter().cloned());
        match a.json["next_before"].as_str() {
            Some(b) => next = format!("&before={}", b.replace('+', "%2B")),
            None => break,
        }
        assert!(paged.len() <= items.len(), "paging never repeats");
    }
    assert_eq!(paged.len(), items.len(), "paging never skips");
    let a = api.get(&format!("{tl}?kind=Case!"), &read).await;
    assert_eq!(a.status, 400);
    assert!(a.error().starts_with("kind: "), "{}", a.json);

    // Links with rule, score, evidence and the uncertain flag.
    let a = api
        .get(&format!("/api/v1/parties/{party}/links"), &read)
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    let links = a.json["links"].as_array().unwrap();
    assert!(links.len() >= 3, "her records across sources: {}", a.json);
    for l in links {
        assert!(l["rule"].is_string() && l["score"].is_number(), "{l}");
        assert!(
            l["evidence"].is_array() && l["uncertain"].is_boolean(),
            "{l}"
        );
    }
    let rec = |l: &Value| {
        format!(
            "{}:{}",
            l["source"].as_str().unwrap(),
            l["key"].as_str().unwrap()
        )
    };
    let (mine_a, mine_b) = (rec(&links[0]), rec(&links[1]));

    // Match evidence between two of her records.
    let a = api
        .get(&format!("/api/v1/explain?a={mine_a}&b={mine_b}"), &read)
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["same_party"], true);
    assert!(a.json["explanation"]["total_weight"].is_number());
    assert!(
        !a.json["explanation"]["comparisons"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Another party's record, for the tests below.
    let page = api.get("/api/v1/parties?limit=5", &read).await;
    assert_eq!(page.status, 200, "{}", page.json);
    assert!(page.json["next_after"].is_string());
    let other = page.json["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .find(|id| *id != party)
        .unwrap();
    let a = api
        .get(&format!("/api/v1/parties/{other}/links"), &read)
        .await;
    let theirs = rec(&a.json["links"][0]);

    // A contribution anchored to another party's record is refused.
    let contributions = format!("/api/v1/parties/{party}/contributions");
    let (source, key) = theirs.split_once(':').unwrap();
    let a = api
        .post(
            &contributions,
            &contribute,
            json!({"kind": "correction", "attribute": "email", "value": "x@example.com",
                   "anchor": {"type": "record", "source": source, "key": key}}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.json);
    assert!(a.error().contains(&theirs), "{}", a.json);
    // Anchored to her own record it is stored and in her view at once.
    let (source, key) = mine_a.split_once(':').unwrap();
    let a = api
        .post(
            &contributions,
            &contribute,
            json!({"kind": "preference", "attribute": "channel", "value": "sms",
                   "anchor": {"type": "record", "source": source, "key": key}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.json);
    let a = api.get(&contributions, &read).await;
    assert!(
        a.json["contributions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["attribute"] == "channel" && c["value"] == "sms")
    );
    let a = api.get(&format!("/api/v1/parties/{party}"), &read).await;
    assert!(
        a.json["view"]["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "preference"
                && f["value"] == "sms"
                && f["provenance"]["source"] == "contributions"),
        "the preference is in her view"
    );
    // Malformed bodies are refused with a reason.
    let a = api
        .client
        .post(format!("{}{contributions}", s.base))
        .bearer_auth(&contribute)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 400);
    let a = api
        .client
        .post(format!("{}{contributions}", s.base))
        .bearer_auth(&contribute)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 415);
    let body: Value = a.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("application/json"));

    // Accepting her record with the other party's merges them; the merged
    // id keeps answering, with the survivor.
    let a = api.get("/api/v1/review?status=pending", &read).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = api
        .post(
            "/api/v1/review",
            &contribute,
            json!({"a": mine_a, "b": theirs, "decision": "accept", "by": "api test"}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["a_party"], a.json["b_party"], "{}", a.json);
    assert!(
        a.json["link"]["merged"].as_u64().unwrap() >= 1,
        "{}",
        a.json
    );
    let survivor = a.json["a_party"].as_str().unwrap().to_string();
    let gone = if survivor == party { &other } else { &party };
    let a = api.get(&format!("/api/v1/parties/{gone}"), &read).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["party"], survivor.as_str());
    assert_eq!(a.json["merged_into"], survivor.as_str());
    assert_eq!(a.json["requested"], gone.as_str());

    // The document: served without a key, every route in it, and every
    // documented operation served (other methods refused).
    let res = api
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented = operations(&doc);
    let listed: BTreeSet<(String, String)> = kith_api::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, listed, "the document and the route list differ");
    for required in [
        "/api/v1/parties",
        "/api/v1/parties/{id}",
        "/api/v1/search",
        "/api/v1/parties/{id}/timeline",
        "/api/v1/parties/{id}/links",
        "/api/v1/explain",
        "/api/v1/review",
        "/api/v1/parties/{id}/contributions",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(
            doc["paths"][required].is_object(),
            "{required} is not documented"
        );
    }
    for (method, path) in &documented {
        let uri = path.replace("{id}", &survivor);
        let body = (method == "POST").then(|| json!({}));
        let a = api.send(method, &uri, Some(&contribute), body).await;
        assert!(
            a.status != 404 && a.status != 405,
            "{method} {path} is documented but answers {}",
            a.status
        );
        for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(&(other.to_string(), path.clone())) {
                continue;
            }
            let a = api.send(other, &uri, Some(&contribute), None).await;
            assert_eq!(a.status, 405, "{other} {path} is served but not documented");
        }
    }
}
