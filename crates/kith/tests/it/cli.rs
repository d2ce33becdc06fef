use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::text;

fn kith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(args)
        .env_remove("KITH_CONFIG")
        .output()
        .expect("kith runs")
}

/// Runs `kith demo` into `dir` and returns the showcase customer's e-mail.
/// The demo's loyalty API stops with the demo; see [`loyalty_api`].
fn demo(dir: &Path) -> String {
    let out = kith(&[
        "demo",
        "--dir",
        dir.to_str().unwrap(),
        "--people",
        "400",
        "--loyalty-listen",
        "127.0.0.1:0",
        "--no-serve",
    ]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("# this customer again"))
        .unwrap_or_else(|| panic!("the demo says how to see the customer again:\n{all}"));
    let email = line
        .split_whitespace()
        .find(|w| w.contains('@'))
        .expect("an e-mail on that line")
        .to_string();
    assert!(all.contains("Sources"), "{all}");
    assert!(all.contains("linked"), "{all}");
    email
}

/// Starts the demo's loyalty API again, where the generated configuration expects it.
async fn loyalty_api(dir: &Path) -> kith::demo::loyalty_api::LoyaltyApi {
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("kith.toml")).unwrap()).unwrap();
    let url = config["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("loyalty"))
        .and_then(|s| s["connection"]["base_url"].as_str())
        .expect("the loyalty source names its API");
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kith::demo::loyalty_api::start(dir, addr).await.unwrap()
}

fn view_json(config: &Path, query: &str) -> Value {
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "view",
        query,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("view --json prints one JSON object")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_resolves_a_business_and_the_view_has_provenance_conflicts_and_statuses() {
    let d = tempfile::tempdir().unwrap();
    let email = demo(d.path());
    let config = d.path().join("kith.toml");
    let _api = loyalty_api(d.path()).await;
    let v = view_json(&config, &email);

    let party = v["party"].as_str().unwrap();
    assert!(party.starts_with("p_"), "{party}");
    // The same party by its id.
    assert_eq!(view_json(&config, party)["party"], v["party"]);

    let sources = v["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in ["billing", "support", "shop", "marketing", "loyalty"] {
        assert!(names.contains(&want), "{names:?}");
    }
    // kith's own event log (ingest) holds nothing of hers until an application sends it.
    for s in sources.iter().filter(|s| s["name"] != "ingest") {
        assert_eq!(
            s["status"], "ok",
            "the showcase customer is in every source: {s}"
        );
    }

    let facts = v["facts"].as_array().unwrap();
    assert!(facts.len() > 10, "{}", facts.len());
    for f in facts {
        assert!(f["kind"].is_string(), "{f}");
        assert!(!f["value"].is_null(), "{f}");
        let p = &f["provenance"];
        assert!(
            p["source"].is_string() && p["key"].is_string() && p["fetched_at"].is_string(),
            "{f}"
        );
    }
    let kinds: Vec<&str> = facts.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for want in ["transaction", "case", "offer", "entitlement", "holding"] {
        assert!(kinds.contains(&want), "{want} in {kinds:?}");
    }
    // The showcase customer moved: billing and the shop disagree on the street.
    let conflicts: Vec<&Value> = v["profile"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["conflict"] == true)
        .collect();
    assert!(!conflicts.is_empty(), "{}", v["profile"]);
    let street = conflicts
        .iter()
        .find(|a| a["attribute"] == "street")
        .expect("a street conflict");
    let sources_of: Vec<&str> = street["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["provenance"]["source"].as_str().unwrap())
        .collect();
    assert!(
        sources_of.contains(&"billing") && sources_of.contains(&"shop"),
        "{sources_of:?}"
    );
    assert_eq!(
        street["best_source"], "billing",
        "billing changed most recently"
    );
}

#[test]
fn sources_that_are_down_show_as_unreachable_and_the_rest_answers() {
    let d = tempfile::tempdir().unwrap();
    let email = demo(d.path());
    let config = d.path().join("kith.toml");
    // The loyalty API stopped with the demo, and the shop's orders file goes missing.
    std::fs::remove_file(d.path().join("shop/orders.csv")).unwrap();
    let v = view_json(&config, &email);
    let source = |name: &str| {
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let loyalty = source("loyalty");
    assert_eq!(loyalty["status"], "unreachable", "{loyalty}");
    assert!(
        loyalty["reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{loyalty}"
    );
    let shop = source("shop");
    assert_eq!(shop["status"], "unreachable", "{shop}");
    assert!(
        shop["reason"].as_str().unwrap().contains("orders.csv"),
        "{shop}"
    );
    assert_eq!(source("billing")["status"], "ok");
    assert_eq!(source("support")["status"], "ok");
    assert_eq!(source("marketing")["status"], "ok");

    // The terminal report says so too.
    let out = kith(&["--config", config.to_str().unwrap(), "view", &email]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("unreachable"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_quarantines_broken_rows_and_says_where() {
    let d = tempfile::tempdir().unwrap();
    demo(d.path());
    let config = d.path().join("kith.toml");
    let _api = loyalty_api(d.path()).await;
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "sync",
        "--full",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let q: u64 = r["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["quarantined"].as_u64().unwrap())
        .sum();
    assert_eq!(
        q, 3,
        "two broken shop rows and one broken marketing line: {r}"
    );
    // A second sync changes nothing.
    let again: Value = serde_json::from_slice(
        &kith(&["--config", config.to_str().unwrap(), "sync", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(again["link"]["new_parties"], 0, "{again}");
    assert_eq!(again["link"]["links_changed"], 0, "{again}");

    let out = kith(&["--config", config.to_str().unwrap(), "quarantine"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("customers.csv line"), "{listing}");
    assert!(listing.contains("contacts.jsonl line"), "{listing}");
}

#[test]
fn a_malformed_config_names_file_line_and_field() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("kith.toml");
    std::fs::write(
        &p,
        "[hub]\nstore = \"hub.db\"\n\n[[sources]]\nname = \"x\"\nconnection = { kind = \"csv\", dir = \".\" }\n[sources.identity]\nfrom = \"a.csv\"\nkey = \"id\"\nattributes = { emial = \"email\" }\n",
    )
    .unwrap();
    let out = kith(&["--config", p.to_str().unwrap(), "sync"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(err.contains("kith.toml"), "{err}");
    assert!(err.contains("line 10"), "{err}");
    assert!(err.contains("emial"), "{err}");

    let out = kith(&[
        "--config",
        d.path().join("missing.toml").to_str().unwrap(),
        "sync",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("missing.toml"), "{}", text(&out));
}

#[test]
fn generate_only_writes_sources_and_a_config_that_checks() {
    let d = tempfile::tempdir().unwrap();
    let out = kith(&[
        "demo",
        "--dir",
        d.path().to_str().unwrap(),
        "--people",
        "200",
        "--generate-only",
        "--loyalty-listen",
        "127.0.0.1:0",
        "--no-serve",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(d.path().join("kith.toml").exists());
    assert!(
        !d.path().join("hub.db").exists(),
        "generate-only does not sync"
    );
    let config = d.path().join("kith.toml");
    // Without its API the loyalty source is unreachable, and check says so.
    let out = kith(&["--config", config.to_str().unwrap(), "check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("!!  loyalty"), "{}", text(&out));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _api = rt.block_on(loyalty_api(d.path()));
    let out = kith(&["--config", config.to_str().unwrap(), "check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok  loyalty"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_trains_a_model_exports_parties_and_explains_pairs() {
    let d = tempfile::tempdir().unwrap();
    demo(d.path());
    let config = d.path().join("kith.toml");
    let _api = loyalty_api(d.path()).await;
    let export = d.path().join("parties.csv");
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "resolve",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        d.path().join("kith-model.json").exists(),
        "a model was trained"
    );
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(
        exported.starts_with("source,key,party_id\n"),
        "{exported:.80}"
    );

    // Scored against the generator's answer key: no over-merges, few splits.
    let score = kith::demo::truth::score(&d.path().join("truth.csv"), &export).unwrap();
    assert!(score.precision >= 0.999, "{score:?}");
    assert!(score.recall >= 0.98, "{score:?}");

    // Two records of the showcase customer (person-0 in the answer key), explained.
    let truth = std::fs::read_to_string(d.path().join("truth.csv")).unwrap();
    let showcase: Vec<String> = truth
        .lines()
        .filter(|l| l.ends_with(",person-0"))
        .map(|l| l.rsplit_once(',').unwrap().0.replacen(',', ":", 1))
        .collect();
    assert_eq!(showcase.len(), 5, "{showcase:?}");
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "explain",
        &showcase[0],
        &showcase[1],
        "--json",
    ]);
    let text_out = text(&out);
    assert!(out.status.success(), "{text_out}");
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: f64 = e["prior_weight"].as_f64().unwrap()
        + e["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["weight"].as_f64().unwrap())
            .sum::<f64>();
    assert!(
        (total - e["total_weight"].as_f64().unwrap()).abs() < 1e-6,
        "{e}"
    );
    assert!(e["probability"].as_f64().unwrap() > 0.5, "{e}");
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "explain",
        &showcase[0],
        &showcase[1],
    ]);
    assert!(text(&out).contains("match probability"), "{}", text(&out));
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "explain",
        &showcase[0],
        "nope:1",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("nope:1"), "{}", text(&out));

    // The review queue answers, and a decision re-links at once.
    let out = kith(&["--config", config.to_str().unwrap(), "review"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "review",
        "accept",
        &showcase[0],
        &showcase[1],
        "--by",
        "staff:test",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("accepted") && text(&out).contains("re-linked"),
        "{}",
        text(&out)
    );
    let out = kith(&[
        "--config",
        config.to_str().unwrap(),
        "review",
        "list",
        "--all",
        "--json",
    ]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let decided: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "accepted")
        .collect();
    assert_eq!(decided.len(), 1, "{all}");
    assert_eq!(decided[0]["decided_by"], "staff:test", "{all}");
}
