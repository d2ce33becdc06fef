//! Ingest as a source like any other: the event log seen through the
//! [`Connector`] trait, so sync puts identified users into the identity index
//! and linking joins them to parties, and the 360 view and timeline read
//! their events.
//!
//! - A record per identified `userId` (an `identify` or `group` carried it),
//!   with the traits of all its `identify` calls merged in order: names,
//!   e-mail addresses and phone numbers are identifying attributes.
//!   Anonymous-only activity is a visitor, not a record, until identified.
//! - `alias` makes the previous id's record and events the new id's: both
//!   records carry the external id `ingest_user` of the newest id, so they link.
//! - `group` makes an organisation record `group:<groupId>` named by the
//!   group's traits, and puts that name on the person, so linking relates them.
//! - Junk values (`null`, `anonymous`, `0`, empty, …) are never ids or
//!   identifiers, and a user carries at most [`MAX_PER_TYPE`] e-mail addresses
//!   and phone numbers (the newest), so one shared test login cannot merge everyone.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use kith_connect::{
    Capabilities, Connector, LookupCapability, LookupRequest, LookupResult, ScanItem, ScanStream,
    SourceConfig,
};
use kith_model::{
    Cardinality, CursorValue, Fact, FactKind, IdentityAttrs, IdentityRecord, PartyKind, Provenance,
    RecordRef, Relation,
};
use serde_json::Value;

use crate::log::{EventLog, StoredEvent};

/// The source's name in provenance, record references and views.
pub const SOURCE: &str = "ingest";
/// Most e-mail addresses, and most phone numbers, one user carries.
pub const MAX_PER_TYPE: usize = 5;

/// Values clients send when they have no real one.
pub fn is_junk(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    matches!(
        v.as_str(),
        "" | "null"
            | "undefined"
            | "none"
            | "nil"
            | "anonymous"
            | "anon"
            | "unknown"
            | "0"
            | "-1"
            | "n/a"
            | "na"
            | "test"
            | "guest"
            | "user"
            | "[object object]"
    )
}

pub struct IngestSource {
    config: SourceConfig,
    log: Arc<EventLog>,
}

impl IngestSource {
    pub fn new(log: Arc<EventLog>) -> Self {
        let config: SourceConfig = serde_json::from_value(serde_json::json!({
            "name": SOURCE,
            "connection": { "kind": "ingest" },
            "verified": false,
            "priority": 1,
            "relation": "prospect",
            "identity": { "from": "events", "key": "userId" },
            "facts": {
                "events": { "from": "events", "join": "userId", "kind": "interaction", "date": "timestamp" }
            }
        }))
        .expect("the ingest source's mapping is valid");
        IngestSource { config, log }
    }
}

fn trait_str<'a>(traits: &'a Value, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| traits.get(*n).and_then(Value::as_str))
        .filter(|s| !is_junk(s))
}

/// Merges identify traits, oldest first, into identifying attributes.
fn attrs_of(events: &[StoredEvent], canonical: &str, org_names: &[String]) -> IdentityAttrs {
    let mut a = IdentityAttrs::default();
    let mut emails: Vec<String> = Vec::new();
    let mut phones: Vec<String> = Vec::new();
    for e in events.iter().filter(|e| e.kind == "identify") {
        let t = &e.body["traits"];
        if let Some(v) = trait_str(t, &["name"]) {
            a.full_name = Some(v.to_string());
        }
        if let Some(v) = trait_str(t, &["firstName", "first_name"]) {
            a.given_name = Some(v.to_string());
        }
        if let Some(v) = trait_str(t, &["lastName", "last_name"]) {
            a.family_name = Some(v.to_string());
        }
        if let Some(v) = trait_str(t, &["email"]) {
            emails.retain(|x| x != v);
            emails.push(v.to_string());
        }
        if let Some(v) = trait_str(t, &["phone"]) {
            phones.retain(|x| x != v);
            phones.push(v.to_string());
        }
        if let Some(v) = trait_str(t, &["birthday"]) {
            a.date_of_birth = Some(v.to_string());
        }
        let address = &t["address"];
        if let Some(v) = trait_str(address, &["street"]) {
            a.street = Some(v.to_string());
        }
        if let Some(v) = trait_str(address, &["city"]) {
            a.city = Some(v.to_string());
        }
        if let Some(v) = trait_str(address, &["postalCode", "postal_code"]) {
            a.postcode = Some(v.to_string());
        }
        if let Some(v) = trait_str(address, &["country"]) {
            a.country = Some(v.to_string());
        }
    }
    // The newest few of each kind: a limit per identifier type.
    let keep = |v: Vec<String>| v[v.len().saturating_sub(MAX_PER_TYPE)..].to_vec();
    a.emails = keep(emails);
    a.phones = keep(phones);
    a.org_name = org_names.last().cloned();
    a.external_ids
        .insert("ingest_user".into(), canonical.to_string());
    a
}

impl IngestSource {
    /// The newest id a user id was aliased to (following chains), or itself.
    async fn canonical(&self, user: &str) -> kith_connect::Result<String> {
        let mut current = user.to_string();
        for _ in 0..16 {
            match self.log.alias_target(&current).await.map_err(conn_err)? {
                Some(next) if next != current && !is_junk(&next) => current = next,
                _ => break,
            }
        }
        Ok(current)
    }

    async fn person(&self, user: &str, cursor: i64) -> kith_connect::Result<IdentityRecord> {
        let events = self.log.identity_events_of(user).await.map_err(conn_err)?;
        let mut org_names = Vec::new();
        for e in events.iter().filter(|e| e.kind == "group") {
            if let Some(n) = trait_str(&e.body["traits"], &["name"]) {
                org_names.push(n.to_string());
            }
        }
        let canonical = self.canonical(user).await?;
        let updated_at = events.last().map(|e| e.timestamp);
        Ok(IdentityRecord {
            record: RecordRef {
                source: SOURCE.into(),
                key: user.to_string(),
            },
            kind: PartyKind::Person,
            relation: Some(Relation::Prospect),
            attrs: attrs_of(&events, &canonical, &org_names),
            cursor: Some(CursorValue::Int(cursor)),
            updated_at,
        })
    }

    async fn organisation(&self, group: &str, cursor: i64) -> kith_connect::Result<IdentityRecord> {
        let events = self.log.group_events(group).await.map_err(conn_err)?;
        let mut attrs = IdentityAttrs::default();
        for e in &events {
            let t = &e.body["traits"];
            if let Some(n) = trait_str(t, &["name"]) {
                attrs.org_name = Some(n.to_string());
            }
            if let Some(v) = trait_str(t, &["email"]) {
                attrs.emails = vec![v.to_string()];
            }
            if let Some(v) = trait_str(t, &["phone"]) {
                attrs.phones = vec![v.to_string()];
            }
        }
        attrs
            .external_ids
            .insert("ingest_group".into(), group.to_string());
        Ok(IdentityRecord {
            record: RecordRef {
                source: SOURCE.into(),
                key: format!("group:{group}"),
            },
            kind: PartyKind::Organisation,
            relation: Some(Relation::Prospect),
            attrs,
            cursor: Some(CursorValue::Int(cursor)),
            updated_at: events.last().map(|e| e.timestamp),
        })
    }
}

fn conn_err(e: crate::log::LogError) -> kith_connect::Error {
    kith_connect::Error::Config {
        source_name: SOURCE.into(),
        message: e.to_string(),
    }
}

#[async_trait]
impl Connector for IngestSource {
    fn source(&self) -> &SourceConfig {
        &self.config
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            lookup: LookupCapability::Indexed,
            incremental_scan: true,
        }
    }

    async fn scan(&self, since: Option<CursorValue>) -> kith_connect::Result<ScanStream> {
        let after = match since {
            Some(CursorValue::Int(n)) => n,
            _ => 0,
        };
        let users = self.log.identified_after(after).await.map_err(conn_err)?;
        let groups = self.log.groups_after(after).await.map_err(conn_err)?;
        let mut items = Vec::with_capacity(users.len() + groups.len());
        for (user, seq) in users {
            if is_junk(&user) {
                continue;
            }
            items.push(Ok(ScanItem::Record(self.person(&user, seq).await?)));
        }
        for (group, seq) in groups {
            if is_junk(&group) {
                continue;
            }
            items.push(Ok(ScanItem::Record(self.organisation(&group, seq).await?)));
        }
        Ok(futures::stream::iter(items).boxed())
    }

    async fn lookup(&self, request: &LookupRequest) -> kith_connect::Result<LookupResult> {
        let users: Vec<String> = request
            .records
            .iter()
            .map(|r| r.record.key.clone())
            .filter(|k| !k.starts_with("group:"))
            .collect();
        // Ids merged into these users by alias, and the anonymous ids they were seen with.
        let mut all_users = users.clone();
        for u in &users {
            for p in self.log.aliased_from(u).await.map_err(conn_err)? {
                if !all_users.contains(&p) && !is_junk(&p) {
                    all_users.push(p);
                }
            }
        }
        let anonymous: Vec<String> = self
            .log
            .anonymous_ids_of(&all_users)
            .await
            .map_err(conn_err)?
            .into_iter()
            .filter(|a| !is_junk(a))
            .collect();
        let limit = request.limit.unwrap_or(500);
        let events = self
            .log
            .events_of(&all_users, &anonymous, limit)
            .await
            .map_err(conn_err)?;
        // Each event belongs to its user's record, or (aliased and anonymous ones) the first.
        let fallback = users.first().cloned().unwrap_or_default();
        let now = chrono::Utc::now();
        let facts = events
            .into_iter()
            .filter(|e| request.since.is_none_or(|s| e.timestamp >= s))
            .filter(|e| matches!(e.kind.as_str(), "track" | "page" | "screen"))
            .map(|e| {
                let key = e
                    .user_id
                    .clone()
                    .filter(|u| users.contains(u))
                    .unwrap_or_else(|| fallback.clone());
                let mut value = BTreeMap::new();
                value.insert("type".to_string(), Value::String(e.kind.clone()));
                if let Some(n) = &e.name {
                    value.insert(
                        if e.kind == "track" { "event" } else { "name" }.to_string(),
                        Value::String(n.clone()),
                    );
                }
                if let Some(p) = e.body.get("properties").filter(|p| p.is_object()) {
                    value.insert("properties".into(), p.clone());
                }
                value.insert("message_id".into(), Value::String(e.message_id.clone()));
                Fact {
                    kind: FactKind::parse(FactKind::INTERACTION).expect("well-known kind"),
                    cardinality: Cardinality::Many,
                    attribute: None,
                    value: serde_json::to_value(value).unwrap_or(Value::Null),
                    date: Some(e.timestamp),
                    provenance: Provenance {
                        source: SOURCE.into(),
                        key,
                        fact_set: "events".into(),
                        updated_at: Some(e.received_at),
                        fetched_at: now,
                    },
                }
            })
            .collect();
        Ok(LookupResult {
            facts,
            problems: Vec::new(),
            stale_for: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::event::parse;
    use serde_json::json;

    async fn log_with(messages: Vec<serde_json::Value>) -> (tempfile::TempDir, Arc<EventLog>) {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(&dir.path().join("events.db")).await.unwrap());
        let now = chrono::Utc::now();
        let events = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| parse(m, None, None, now, i).unwrap())
            .collect();
        log.append(events).await.unwrap();
        (dir, log)
    }

    async fn records(source: &IngestSource) -> Vec<IdentityRecord> {
        let stream = source.scan(None).await.unwrap();
        stream
            .map(|i| match i.unwrap() {
                ScanItem::Record(r) => r,
                ScanItem::Quarantined(q) => panic!("{q:?}"),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn identities_come_from_identify_alias_and_group_only() {
        let (_dir, log) = log_with(vec![
            json!({"type": "track", "anonymousId": "anon-1", "event": "Viewed"}),
            json!({"type": "identify", "userId": "u-1", "anonymousId": "anon-1",
                   "traits": {"email": "ann@example.com", "firstName": "Ann", "phone": "null"}}),
            json!({"type": "identify", "userId": "u-1", "traits": {"phone": "+44 7700 900123"}}),
            json!({"type": "identify", "userId": "old-7", "traits": {"email": "ann.old@example.com"}}),
            json!({"type": "alias", "previousId": "old-7", "userId": "u-1"}),
            json!({"type": "group", "userId": "u-1", "groupId": "g-9", "traits": {"name": "Leaf & Co"}}),
            json!({"type": "identify", "userId": "anonymous", "traits": {"email": "x@example.com"}}),
            json!({"type": "track", "userId": "u-1", "event": "Order Completed"}),
        ])
        .await;
        let source = IngestSource::new(log);
        let mut recs = records(&source).await;
        recs.sort_by(|a, b| a.record.key.cmp(&b.record.key));
        let keys: Vec<&str> = recs.iter().map(|r| r.record.key.as_str()).collect();
        // No record for the anonymous visitor or the junk user id.
        assert_eq!(keys, ["group:g-9", "old-7", "u-1"]);
        let (org, old, ann) = (&recs[0], &recs[1], &recs[2]);
        assert_eq!(ann.attrs.emails, ["ann@example.com"]);
        assert_eq!(
            ann.attrs.phones,
            ["+44 7700 900123"],
            "junk traits are dropped"
        );
        assert_eq!(ann.attrs.given_name.as_deref(), Some("Ann"));
        assert_eq!(ann.attrs.org_name.as_deref(), Some("Leaf & Co"));
        // The aliased id carries the new id, so the two records link deterministically.
        assert_eq!(old.attrs.external_ids["ingest_user"], "u-1");
        assert_eq!(ann.attrs.external_ids["ingest_user"], "u-1");
        assert_eq!(org.kind, PartyKind::Organisation);
        assert_eq!(org.attrs.org_name.as_deref(), Some("Leaf & Co"));

        // Ann's events include her anonymous visit and exclude nobody else's.
        let found = source
            .lookup(&LookupRequest {
                records: vec![ann.clone()],
                fact_sets: Vec::new(),
                since: None,
                limit: None,
            })
            .await
            .unwrap();
        let names: Vec<String> = found
            .facts
            .iter()
            .map(|f| f.value["event"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(names.contains(&"Viewed".to_string()), "{names:?}");
        assert!(names.contains(&"Order Completed".to_string()), "{names:?}");
        assert!(found.facts.iter().all(|f| f.provenance.key == "u-1"));
    }

    #[tokio::test]
    async fn a_user_carries_at_most_five_addresses_of_a_kind() {
        let messages = (0..8)
            .map(|i| json!({"type": "identify", "userId": "shared", "traits": {"email": format!("t{i}@example.com")}}))
            .collect();
        let (_dir, log) = log_with(messages).await;
        let recs = records(&IngestSource::new(log)).await;
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].attrs.emails.len(), MAX_PER_TYPE);
        assert_eq!(
            recs[0].attrs.emails.last().unwrap(),
            "t7@example.com",
            "the newest are kept"
        );
    }

    #[test]
    fn junk_is_never_an_identifier() {
        for j in ["", " null ", "Anonymous", "0", "undefined", "N/A"] {
            assert!(is_junk(j), "{j:?}");
        }
        assert!(!is_junk("u_123"));
        assert!(!is_junk("ann@example.com"));
    }
}
