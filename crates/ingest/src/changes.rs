//! Ingested events into the change feed: after each resolve cycle, the
//! events the feed has not seen become `events.ingested` changes, one per
//! chunk of at most [`CHUNK`] events, in log order.
//!
//! The resolver's position in the event log is a feed cursor
//! ([`CONSUMER`]) stored in the same hub store transaction as the changes it
//! produced, so a crash between the two neither loses a chunk nor sends it
//! twice. The event log and the hub store are separate files, so the events
//! themselves are not in that transaction — they need not be: the log is
//! durable before an event is acknowledged, and the cursor says how far the
//! feed has read it.

use std::collections::BTreeMap;

use kith_model::{PartyId, RecordRef};
use kith_store::{ChangeKind, HubStore, NewChange};
use serde_json::{Map, Value, json};

use crate::log::{EventLog, LogError, StoredEvent};
use crate::source::SOURCE;

/// Most events one change carries: a few hundred bytes each keeps a change
/// far below NATS's default 1 MB message limit.
pub const CHUNK: usize = 500;
/// The resolver's position in the event log, among the feed cursors.
pub const CONSUMER: &str = "ingest.resolver";

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("reading ingested events for the change feed: {0}")]
    Log(#[from] LogError),
    #[error("writing ingested events to the change feed: {0}")]
    Store(#[from] kith_store::Error),
}

/// One `events.ingested` change for a chunk of events (in log order), each
/// event with the party its user id is linked to, if any.
///
/// Only ids and names go in: the message id, type, the `track` event's or
/// the page's or screen's name, user, anonymous, group and previous ids, and
/// the party — never traits or properties, which are identity and fact values.
pub fn chunk_change(events: &[StoredEvent], parties: &BTreeMap<String, PartyId>) -> NewChange {
    let first = events.first().map_or(0, |e| e.seq);
    let last = events.last().map_or(0, |e| e.seq);
    let listed: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("seq".into(), json!(e.seq));
            m.insert("message_id".into(), json!(e.message_id));
            m.insert("type".into(), json!(e.kind));
            let optional = [
                ("name", &e.name),
                ("user_id", &e.user_id),
                ("anonymous_id", &e.anonymous_id),
                ("group_id", &e.group_id),
                ("previous_id", &e.previous_id),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    m.insert(key.into(), json!(v));
                }
            }
            if let Some(p) = e.user_id.as_ref().and_then(|u| parties.get(u)) {
                m.insert("party".into(), json!(p));
            }
            Value::Object(m)
        })
        .collect();
    NewChange {
        kind: ChangeKind::EventsIngested,
        party: None,
        subject: format!("events:{first}-{last}"),
        data: json!({
            "first_seq": first,
            "last_seq": last,
            "count": events.len(),
            "events": listed,
        }),
    }
}

/// Feeds every event after the resolver's position up to `upto` (the last
/// seq the resolve cycle saw, so no event is fed before its identity is
/// resolved); returns how many.
pub async fn feed_events(
    store: &dyn HubStore,
    log: &EventLog,
    upto: i64,
) -> Result<u64, FeedError> {
    let mut position = store.feed_cursor(CONSUMER).await?.unwrap_or(0);
    let mut fed = 0;
    loop {
        let mut events = log.after(position, CHUNK).await?;
        let read = events.len();
        events.retain(|e| e.seq <= upto);
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(fed);
        };
        let mut parties = BTreeMap::new();
        for user in events.iter().filter_map(|e| e.user_id.as_ref()) {
            if parties.contains_key(user) {
                continue;
            }
            let record = RecordRef::new(SOURCE, user.as_str());
            if let Some(link) = store.link(&record).await? {
                parties.insert(user.clone(), link.party);
            }
        }
        let change = chunk_change(&events, &parties);
        store
            .append_changes(&[change], Some((CONSUMER, last)))
            .await?;
        fed += events.len() as u64;
        position = last;
        if read < CHUNK || events.len() < read {
            return Ok(fed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventType, parse};
    use chrono::Utc;
    use kith_model::{Link, Party, PartyKind};
    use kith_store::SqliteStore;

    fn ev(id: &str, user: Option<&str>, kind: EventType) -> crate::Event {
        let mut body = json!({"messageId": id, "event": "Viewed", "name": "Home",
                              "traits": {"email": "ann@example.com"},
                              "properties": {"price": 19.99}});
        match user {
            Some(u) => body["userId"] = json!(u),
            None => body["anonymousId"] = json!("anon-1"),
        }
        parse(body, Some(kind), None, Utc::now(), 0).unwrap()
    }

    #[tokio::test]
    async fn events_are_fed_once_in_chunks_with_their_party() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(&dir.path().join("events.db")).await.unwrap();
        let store = SqliteStore::open_in_memory().await.unwrap();
        let now = Utc::now();
        let party = Party {
            id: PartyId::generate(now),
            kind: PartyKind::Person,
            created_at: now,
            founding_record: RecordRef::new(SOURCE, "u1"),
        };
        store
            .create_parties(std::slice::from_ref(&party))
            .await
            .unwrap();
        store
            .set_links(&[Link {
                record: RecordRef::new(SOURCE, "u1"),
                party: party.id.clone(),
                rule: "single".into(),
                score: 1.0,
                evidence: vec![],
                linked_at: now,
            }])
            .await
            .unwrap();
        let before = store.latest_change_seq().await.unwrap();

        let mut events = vec![
            ev("m-0", Some("u1"), EventType::Identify),
            ev("m-1", None, EventType::Page),
        ];
        events.extend((2..CHUNK + 3).map(|i| ev(&format!("m-{i}"), Some("u2"), EventType::Track)));
        log.append(events).await.unwrap();
        assert_eq!(
            feed_events(&store, &log, i64::MAX).await.unwrap(),
            CHUNK as u64 + 3
        );
        assert_eq!(
            feed_events(&store, &log, i64::MAX).await.unwrap(),
            0,
            "fed events are not fed again"
        );
        let changes = store.changes_after(before, 10).await.unwrap();
        assert_eq!(changes.len(), 2, "{} events make two chunks", CHUNK + 3);
        assert!(changes.iter().all(|c| c.kind == ChangeKind::EventsIngested));
        let (a, b) = (&changes[0].data, &changes[1].data);
        assert_eq!(a["count"], CHUNK);
        assert_eq!(b["count"], 3);
        assert_eq!(a["first_seq"], 1);
        assert_eq!(b["last_seq"], CHUNK as i64 + 3);
        assert_eq!(a["events"][0]["party"], party.id.as_str());
        assert_eq!(a["events"][0]["user_id"], "u1");
        assert_eq!(a["events"][1]["anonymous_id"], "anon-1");
        assert!(a["events"][1].get("party").is_none());
        assert_eq!(a["events"][2]["name"], "Viewed");
        let text = changes[0].data.to_string();
        assert!(
            !text.contains("ann@example.com") && !text.contains("19.99"),
            "traits and properties stay out of the feed"
        );
        assert_eq!(
            store.feed_cursor(CONSUMER).await.unwrap(),
            Some(CHUNK as i64 + 3)
        );

        log.append(vec![ev("m-late", Some("u1"), EventType::Track)])
            .await
            .unwrap();
        assert_eq!(feed_events(&store, &log, i64::MAX).await.unwrap(), 1);
        let last = store.changes_after(changes[1].seq, 10).await.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].subject, format!("events:{0}-{0}", CHUNK + 4));
    }
}
