//! The `[changes]` section of kith.toml: where the change feed is delivered
//! besides the server-sent-events endpoint, which is always served.
//!
//! ```toml
//! [[changes.webhooks]]
//! name = "crm"
//! url = "https://crm.example.com/hooks/kith"
//! secret_env = "KITH_CRM_WEBHOOK_SECRET"
//! kinds = ["consent.changed", "party.merged"]   # optional; every kind when left out
//! batch = 100
//!
//! [changes.nats]
//! url = "nats://127.0.0.1:4222"
//! stream = "KITH_CHANGES"
//! subject_prefix = "kith.changes"
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use kith_store::ChangeKind;
use serde::Deserialize;

/// The `[changes]` section. Every field has a default, so it may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangesSettings {
    /// Signed webhooks, each delivered in order by its own task.
    pub webhooks: Vec<WebhookSettings>,
    /// NATS JetStream, when configured.
    pub nats: Option<NatsSettings>,
    /// How long changes are kept (`"30d"`). Older ones are pruned hourly,
    /// except any an enabled webhook or NATS has not delivered yet.
    #[serde(with = "kith_connect::duration::required")]
    pub retain: Duration,
}

impl Default for ChangesSettings {
    fn default() -> Self {
        ChangesSettings {
            webhooks: Vec::new(),
            nats: None,
            retain: Duration::from_secs(30 * 86_400),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_batch() -> usize {
    100
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One `[[changes.webhooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Names the webhook in logs and its feed cursor (`webhook:<name>`).
    pub name: String,
    /// Where batches are POSTed (`http://` or `https://`).
    pub url: String,
    /// The environment variable holding the HMAC-SHA256 signing key.
    pub secret_env: String,
    /// Only these kinds are sent (every kind when empty or left out).
    #[serde(default)]
    pub kinds: Vec<ChangeKind>,
    /// Most changes per POST.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// How long one POST may take before it counts as failed.
    #[serde(default = "default_timeout", with = "kith_connect::duration::required")]
    pub timeout: Duration,
    /// Set to false to stop delivering without losing the webhook's position.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_stream() -> String {
    "KITH_CHANGES".into()
}
fn default_prefix() -> String {
    "kith.changes".into()
}

/// `[changes.nats]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSettings {
    #[serde(default = "default_nats_url")]
    pub url: String,
    /// The JetStream stream, created (on subjects `<subject_prefix>.>`) when missing.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Each change is published to `<subject_prefix>.<kind>`.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// Most changes published before waiting for their acknowledgements.
    #[serde(default = "default_batch")]
    pub batch: usize,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A webhook name: it becomes part of a cursor name and log lines.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A NATS subject token: no whitespace, no wildcards, not empty.
fn subject_ok(subject: &str) -> bool {
    subject.split('.').all(|t| {
        !t.is_empty()
            && !t
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
    })
}

/// A JetStream stream name: no whitespace, dots, wildcards or path separators.
fn stream_ok(stream: &str) -> bool {
    !stream.is_empty()
        && !stream
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

impl ChangesSettings {
    /// The feed cursors of the enabled deliveries: what pruning waits for.
    pub fn consumers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .webhooks
            .iter()
            .filter(|w| w.enabled)
            .map(WebhookSettings::consumer)
            .collect();
        if self.nats.as_ref().is_some_and(|n| n.enabled) {
            out.push(NATS_CONSUMER.to_string());
        }
        out
    }

    /// Every problem, as (field path, message), for the configuration's report.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.retain < Duration::from_secs(3600) {
            out.push((
                "changes.retain".to_string(),
                "must be at least 1h, so consumers that reconnect find what they missed"
                    .to_string(),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let mut problem = |field: &str, message: String| {
                out.push((format!("changes.webhooks[{i}].{field}"), message));
            };
            if !name_ok(&w.name) {
                problem(
                    "name",
                    format!(
                        "{:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                        w.name
                    ),
                );
            } else if !names.insert(w.name.as_str()) {
                problem("name", format!("webhook name {:?} is used twice", w.name));
            }
            match reqwest::Url::parse(&w.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => problem(
                    "url",
                    format!(
                        "{:?} must be an http:// or https:// address, e.g. https://crm.example.com/hooks/kith",
                        w.url
                    ),
                ),
            }
            if w.secret_env.trim().is_empty()
                || w.secret_env.contains('=')
                || w.secret_env.contains(char::is_whitespace)
            {
                problem(
                    "secret_env",
                    "must name the environment variable that holds the signing key (the key never goes in this file)".into(),
                );
            }
            if w.batch == 0 || w.batch > 1000 {
                problem("batch", "must be 1 to 1000".into());
            }
            if w.timeout.is_zero() || w.timeout > Duration::from_secs(300) {
                problem("timeout", "must be between 1s and 5m".into());
            }
        }
        if let Some(n) = &self.nats {
            let mut problem = |field: &str, message: String| {
                out.push((format!("changes.nats.{field}"), message));
            };
            if !(n.url.starts_with("nats://") || n.url.starts_with("tls://")) {
                problem(
                    "url",
                    format!(
                        "{:?} must be a nats:// or tls:// address, e.g. nats://127.0.0.1:4222",
                        n.url
                    ),
                );
            }
            if !stream_ok(&n.stream) {
                problem(
                    "stream",
                    format!(
                        "{:?} is not a JetStream stream name (no spaces, '.', '*', '>', '/')",
                        n.stream
                    ),
                );
            }
            if !subject_ok(&n.subject_prefix) {
                problem(
                    "subject_prefix",
                    format!(
                        "{:?} is not a NATS subject (dot-separated words, no spaces or wildcards)",
                        n.subject_prefix
                    ),
                );
            }
            if n.batch == 0 || n.batch > 1000 {
                problem("batch", "must be 1 to 1000".into());
            }
        }
        out
    }
}

impl WebhookSettings {
    /// The webhook's position among the feed cursors.
    pub fn consumer(&self) -> String {
        format!("webhook:{}", self.name)
    }

    /// Whether a change of this kind goes to this webhook.
    pub fn wants(&self, kind: ChangeKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// The NATS publisher's position among the feed cursors.
pub const NATS_CONSUMER: &str = "nats";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ChangesSettings, toml::de::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            changes: ChangesSettings,
        }
        toml::from_str::<Doc>(text).map(|d| d.changes)
    }

    #[test]
    fn a_full_section_reads_with_defaults() {
        let s = parse(
            r#"
[[changes.webhooks]]
name = "crm"
url = "https://crm.example.com/hooks/kith"
secret_env = "CRM_SECRET"
kinds = ["consent.changed", "party.merged"]

[changes.nats]
"#,
        )
        .unwrap();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        let w = &s.webhooks[0];
        assert_eq!(w.batch, 100);
        assert_eq!(w.timeout, Duration::from_secs(10));
        assert!(w.enabled);
        assert!(w.wants(ChangeKind::ConsentChanged));
        assert!(!w.wants(ChangeKind::RecordInserted));
        assert_eq!(w.consumer(), "webhook:crm");
        let n = s.nats.unwrap();
        assert_eq!(n.url, "nats://127.0.0.1:4222");
        assert_eq!(n.stream, "KITH_CHANGES");
        assert_eq!(n.subject_prefix, "kith.changes");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused_by_name() {
        let e = parse("[changes]\nwebhook = []\n").unwrap_err();
        assert!(e.to_string().contains("webhook"), "{e}");
        let e = parse(
            "[[changes.webhooks]]\nname = \"a\"\nurl = \"http://x\"\nsecret_env = \"S\"\nkinds = [\"record.deleted\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("record.deleted"), "{e}");
        assert!(
            e.to_string().contains("record.removed"),
            "lists the kinds: {e}"
        );
    }

    #[test]
    fn mistakes_are_named_by_field() {
        let s = parse(
            r#"
[[changes.webhooks]]
name = "crm"
url = "ftp://crm.example.com"
secret_env = ""
batch = 0

[[changes.webhooks]]
name = "crm"
url = "https://b.example.com"
secret_env = "B"
timeout = "10m"

[changes.nats]
url = "127.0.0.1:4222"
stream = "kith.changes"
subject_prefix = "kith.>"
"#,
        )
        .unwrap();
        let fields: Vec<String> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "changes.webhooks[0].url",
                "changes.webhooks[0].secret_env",
                "changes.webhooks[0].batch",
                "changes.webhooks[1].name",
                "changes.webhooks[1].timeout",
                "changes.nats.url",
                "changes.nats.stream",
                "changes.nats.subject_prefix",
            ]
        );
    }

    #[test]
    fn retention_defaults_to_thirty_days_and_pruning_waits_for_enabled_deliveries() {
        let s = parse("[changes]\n").unwrap();
        assert_eq!(s.retain, Duration::from_secs(30 * 86_400));
        let s = parse(
            "[changes]\nretain = \"10m\"\n[[changes.webhooks]]\nname = \"a\"\n\
             url = \"http://x\"\nsecret_env = \"S\"\n[[changes.webhooks]]\nname = \"b\"\n\
             url = \"http://y\"\nsecret_env = \"S\"\nenabled = false\n[changes.nats]\n",
        )
        .unwrap();
        let fields: Vec<String> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["changes.retain"]);
        assert_eq!(s.consumers(), ["webhook:a", "nats"]);
    }
}
