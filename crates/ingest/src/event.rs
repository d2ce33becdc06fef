//! Segment tracking-API messages: parsing and validation, no I/O.
//!
//! A message is checked on its own, so one bad event in a batch is rejected
//! with its reason while the rest are taken.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// Segment's limit for one event, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's limit for one batch request, in bytes of (uncompressed) JSON.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A validated event, ready for the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// `group`: the organisation's id.
    pub group_id: Option<String>,
    /// `alias`: the id being merged into `user_id`.
    pub previous_id: Option<String>,
    /// `track`: the event name; `page`/`screen`: the page or screen name.
    pub name: Option<String>,
    /// When it happened: `timestamp`, else `originalTimestamp`, else when kith received it.
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The whole message as received, with `type`, `messageId` and `receivedAt` set.
    pub body: Map<String, Value>,
}

/// Why one message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Position in the batch (0 for a single-event request).
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub reason: String,
}

/// An id field: a non-empty string, or a number written as one (clients send both).
fn id_field(m: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > 256 => {
            Err(format!("`{field}` is longer than 256 characters"))
        }
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!(
            "`{field}` must be a string, not {}",
            type_name(other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object_field(m: &Map<String, Value>, field: &str) -> Result<(), String> {
    match m.get(field) {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(format!(
            "`{field}` must be an object, not {}",
            type_name(other)
        )),
    }
}

fn time_field(m: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("`{field}` {s:?} is not an ISO-8601 date-time")),
        Some(other) => Err(format!(
            "`{field}` must be an ISO-8601 string, not {}",
            type_name(other)
        )),
    }
}

/// Validates one message. `implied` is the type the path says (`/v1/track`),
/// `None` inside a batch, where each message names its own `type`.
/// `context` is the batch's shared context, used when the message has none.
pub fn parse(
    value: Value,
    implied: Option<EventType>,
    context: Option<&Value>,
    received_at: DateTime<Utc>,
    index: usize,
) -> Result<Event, Rejected> {
    let message_id = value
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let reject = |reason: String| Rejected {
        index,
        message_id: message_id.clone(),
        reason,
    };
    let Value::Object(mut m) = value else {
        return Err(reject(format!(
            "an event must be a JSON object, not {}",
            type_name(&value)
        )));
    };
    let size = serde_json::to_vec(&m)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(reject(format!(
            "the event is {size} bytes; the limit is {MAX_EVENT_BYTES} (32 KB)"
        )));
    }
    let kind = match (m.get("type"), implied) {
        (Some(Value::String(t)), implied) => {
            let Some(t) = EventType::parse(t) else {
                return Err(reject(format!(
                    "unknown event type {t:?}; kith takes identify, track, page, screen, group and alias"
                )));
            };
            if let Some(i) = implied
                && i != t
            {
                return Err(reject(format!(
                    "a {} event was sent to /v1/{}",
                    t.as_str(),
                    i.as_str()
                )));
            }
            t
        }
        (None, Some(i)) => i,
        (Some(other), _) => {
            return Err(reject(format!(
                "`type` must be a string, not {}",
                type_name(other)
            )));
        }
        (None, None) => return Err(reject("`type` is missing".into())),
    };
    let user_id = id_field(&m, "userId").map_err(reject)?;
    let anonymous_id = id_field(&m, "anonymousId").map_err(reject)?;
    let group_id = id_field(&m, "groupId").map_err(reject)?;
    let previous_id = id_field(&m, "previousId").map_err(reject)?;
    for f in ["traits", "properties", "context", "integrations"] {
        object_field(&m, f).map_err(reject)?;
    }
    match kind {
        EventType::Alias if user_id.is_none() || previous_id.is_none() => {
            return Err(reject(
                "an alias needs both `userId` and `previousId`".into(),
            ));
        }
        EventType::Alias => {}
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(reject(
                "the event needs a `userId` or an `anonymousId`".into(),
            ));
        }
        _ => {}
    }
    if kind == EventType::Group && group_id.is_none() {
        return Err(reject("a group event needs a `groupId`".into()));
    }
    let name = match kind {
        EventType::Track => match m.get("event") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(reject("a track event needs an `event` name".into()));
            }
            Some(other) => {
                return Err(reject(format!(
                    "`event` must be a string, not {}",
                    type_name(other)
                )));
            }
        },
        EventType::Page | EventType::Screen => {
            m.get("name").and_then(Value::as_str).map(str::to_string)
        }
        _ => None,
    };
    let timestamp = time_field(&m, "timestamp")
        .map_err(reject)?
        .or(time_field(&m, "originalTimestamp").map_err(reject)?)
        .unwrap_or(received_at);
    time_field(&m, "sentAt").map_err(reject)?;
    let message_id = match message_id.clone() {
        Some(id) if !id.trim().is_empty() && id.len() <= 256 => id,
        Some(_) => return Err(reject("`messageId` must be 1 to 256 characters".into())),
        // Clients always send one; an event without one cannot be de-duplicated, so it gets its own.
        None => format!("kith-{}", ulid::Ulid::new().to_string().to_lowercase()),
    };
    if !m.contains_key("context")
        && let Some(c) = context
    {
        m.insert("context".into(), c.clone());
    }
    m.insert("type".into(), Value::String(kind.as_str().into()));
    m.insert("messageId".into(), Value::String(message_id.clone()));
    m.insert("receivedAt".into(), Value::String(received_at.to_rfc3339()));
    // The write key is a secret: never kept with the event.
    m.remove("writeKey");
    Ok(Event {
        message_id,
        kind,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        name,
        timestamp,
        received_at,
        body: m,
    })
}

/// A `/v1/batch` body: its events, each validated on its own.
pub fn parse_batch(
    body: Value,
    received_at: DateTime<Utc>,
) -> Result<(Vec<Event>, Vec<Rejected>), String> {
    let Value::Object(mut m) = body else {
        return Err("the body must be a JSON object with a `batch` array".into());
    };
    let Some(Value::Array(items)) = m.remove("batch") else {
        return Err("the body has no `batch` array".into());
    };
    let context = m.get("context").filter(|c| c.is_object()).cloned();
    let mut events = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match parse(item, None, context.as_ref(), received_at, i) {
            Ok(e) => events.push(e),
            Err(r) => rejected.push(r),
        }
    }
    Ok((events, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_track_event_is_taken_with_its_time() {
        let e = parse(
            json!({"userId": "u1", "event": "Order Completed", "messageId": "m1",
                   "timestamp": "2026-11-20T10:00:00Z", "properties": {"total": 12.5}, "writeKey": "secret"}),
            Some(EventType::Track),
            None,
            now(),
            0,
        )
        .unwrap();
        assert_eq!(e.kind, EventType::Track);
        assert_eq!(e.name.as_deref(), Some("Order Completed"));
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert_eq!(e.body["type"], "track");
        assert!(!e.body.contains_key("writeKey"));
    }

    #[test]
    fn bad_events_are_rejected_with_a_reason() {
        let r = |v: Value, t: Option<EventType>| parse(v, t, None, now(), 3).unwrap_err().reason;
        assert!(r(json!({"event": "x"}), Some(EventType::Track)).contains("userId"));
        assert!(r(json!({"userId": "u"}), Some(EventType::Track)).contains("event"));
        assert!(r(json!({"type": "explode", "userId": "u"}), None).contains("unknown event type"));
        assert!(
            r(
                json!({"userId": "u", "type": "track"}),
                Some(EventType::Page)
            )
            .contains("sent to /v1/page")
        );
        assert!(
            r(json!({"userId": {"a": 1}}), Some(EventType::Identify)).contains("must be a string")
        );
        assert!(
            r(
                json!({"userId": "u", "traits": "x"}),
                Some(EventType::Identify)
            )
            .contains("`traits` must be an object")
        );
        assert!(
            r(
                json!({"userId": "u", "timestamp": "yesterday"}),
                Some(EventType::Identify)
            )
            .contains("ISO-8601")
        );
        assert!(r(json!({"previousId": "a"}), Some(EventType::Alias)).contains("previousId"));
        assert!(r(json!({"userId": "u"}), Some(EventType::Group)).contains("groupId"));
        assert!(r(json!([1, 2]), None).contains("JSON object"));
        let big = "x".repeat(MAX_EVENT_BYTES);
        assert!(
            r(
                json!({"userId": "u", "properties": {"b": big}}),
                Some(EventType::Identify)
            )
            .contains("32 KB")
        );
        assert_eq!(parse(json!(1), None, None, now(), 3).unwrap_err().index, 3);
    }

    #[test]
    fn a_batch_takes_the_good_and_names_the_bad() {
        let (events, rejected) = parse_batch(
            json!({"batch": [
                {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}},
                {"type": "nonsense", "userId": "u1"},
                {"type": "track", "anonymousId": "anon", "event": "Viewed"}
            ], "context": {"library": {"name": "test"}}}),
            now(),
        )
        .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 1);
        assert_eq!(events[1].body["context"]["library"]["name"], "test");
        assert!(events[0].message_id.starts_with("kith-"));
        assert!(parse_batch(json!({"events": []}), now()).is_err());
    }
}
