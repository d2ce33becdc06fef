//! The configuration file: one TOML file, read and validated once at start-up.
//!
//! Serde catches syntax, types and unknown fields (its message carries the
//! line); [`Config::load`] then checks what serde cannot — names, references
//! between fields, files that must exist — and names the file, line and field
//! of every problem. Nothing secret belongs in this file: connector kinds that
//! need credentials take them from environment variables named here.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use kith_connect::SourceConfig;
use kith_hub::HubSettings;
use serde::Deserialize;

/// The whole configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    hub: HubSettings,
    #[serde(default)]
    sources: Vec<SourceConfig>,
    #[serde(default)]
    server: kith_web::ServerSettings,
    #[serde(default)]
    ingest: kith_ingest::IngestSettings,
    #[serde(default)]
    changes: kith_feed::ChangesSettings,
}

/// A validated configuration, paths resolved against the file's folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub hub: HubSettings,
    /// The hub store file.
    pub store_path: PathBuf,
    /// The match model file (it may not exist yet).
    pub model_path: PathBuf,
    pub sources: Vec<SourceConfig>,
    /// How `kith serve` runs (paths resolved like the rest).
    pub server: kith_web::ServerSettings,
    /// The Segment-compatible ingest API and its event log (path resolved).
    pub ingest: kith_ingest::IngestSettings,
    /// Where the change feed is delivered besides its SSE endpoint.
    pub changes: kith_feed::ChangesSettings,
}

/// Why a configuration cannot be used. Its display names file, line and field.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Syntax, types and unknown fields, as the TOML parser reports them.
    Parse { path: PathBuf, message: String },
    /// Problems found after parsing, each with its place.
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    /// Dotted path of the field: `sources[2].facts.orders.join`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read configuration {}: {error}", path.display())
            }
            ConfigError::Parse { path, message } => {
                write!(
                    f,
                    "configuration {} is not valid: {message}",
                    path.display()
                )
            }
            ConfigError::Invalid { path, problems } => {
                write!(
                    f,
                    "configuration {} has {} problem(s):",
                    path.display(),
                    problems.len()
                )?;
                for p in problems {
                    match p.line {
                        Some(l) => {
                            write!(f, "\n  {}:{l}: {}: {}", path.display(), p.field, p.message)?
                        }
                        None => write!(f, "\n  {}: {}: {}", path.display(), p.field, p.message)?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates configuration text that was read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_message(text, &e),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut problems: Vec<Problem> = Vec::new();
        let mut problem = |segments: Vec<Seg>, message: String| {
            let field = render(&segments);
            problems.push(Problem {
                line: locate(text, &segments),
                field,
                message,
            });
        };

        let hub = raw.hub;
        if kith_model::normalize::calling_code(&hub.default_region).is_none() {
            problem(
                vec![Seg::Key("hub".into()), Seg::Key("default_region".into())],
                format!(
                    "{:?} is not a region kith knows (use an ISO code such as GB, US, IE, DE)",
                    hub.default_region
                ),
            );
        }
        for (field, message) in hub.problems() {
            problem(
                vec![Seg::Key("hub".into()), Seg::Key(field.into())],
                message,
            );
        }
        for (field, message) in raw.server.problems() {
            problem(dotted(&field), message);
        }
        for (field, message) in raw.changes.problems() {
            problem(dotted(&field), message);
        }
        if raw.sources.is_empty() {
            problem(
                vec![Seg::Key("sources".into())],
                "declare at least one [[sources]] entry".into(),
            );
        }
        let mut names = BTreeSet::new();
        let mut sources = raw.sources;
        for (i, s) in sources.iter_mut().enumerate() {
            let at = |rest: &str| {
                let mut v = vec![Seg::Key("sources".into()), Seg::Index(i)];
                v.extend(
                    rest.split('.')
                        .filter(|p| !p.is_empty())
                        .map(|p| Seg::Key(p.into())),
                );
                v
            };
            if !names.insert(s.name.clone()) {
                problem(
                    at("name"),
                    format!("source name {:?} is used twice", s.name),
                );
            }
            for p in s.validate() {
                problem(at(&p.field), p.message);
            }
            s.connection.resolve_paths(&dir);
            if let Some(msg) = missing_location(s) {
                problem(at("connection"), msg);
            }
            use kith_connect::ConnectorConfig as C;
            let server_problems = match &s.connection {
                C::Postgres(c) => c.problems(&["postgres", "postgresql"]),
                C::Mysql(c) => c.problems(&["mysql", "mariadb"]),
                _ => Vec::new(),
            };
            for (field, msg) in server_problems {
                problem(at(&field), msg);
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        let beside = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_relative() { dir.join(p) } else { p }
        };
        let store_path = beside(&hub.store);
        let model_path = beside(&hub.model);
        let mut server = raw.server;
        if let kith_web::SenderConfig::File { dir: d } = &mut server.sender
            && d.is_relative()
        {
            *d = dir.join(&*d);
        }
        let mut ingest = raw.ingest;
        if ingest.log.is_relative() {
            ingest.log = dir.join(&ingest.log);
        }
        Ok(Config {
            path: path.to_path_buf(),
            hub,
            store_path,
            model_path,
            sources,
            server,
            ingest,
            changes: raw.changes,
        })
    }
}

/// `server.situations[0].label` as path segments.
fn dotted(field: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in field.split('.') {
        match part.split_once('[') {
            Some((key, rest)) => {
                out.push(Seg::Key(key.into()));
                if let Ok(i) = rest.trim_end_matches(']').parse() {
                    out.push(Seg::Index(i));
                }
            }
            None => out.push(Seg::Key(part.into())),
        }
    }
    out
}

/// A file source's folder, or a SQLite source's folder, must exist at start-up.
/// (The file itself may come and go: that is a source being down, shown per view.)
fn missing_location(s: &SourceConfig) -> Option<String> {
    use kith_connect::ConnectorConfig as C;
    match &s.connection {
        C::Sqlite { path } => {
            let parent = path.parent()?;
            (!parent.as_os_str().is_empty() && !parent.is_dir())
                .then(|| format!("the folder of {} does not exist", path.display()))
        }
        C::Csv { dir, .. } | C::Jsonl { dir } => {
            (!dir.is_dir()).then(|| format!("folder {} does not exist", dir.display()))
        }
        C::Postgres(c) | C::Mysql(c) => c
            .ca_file
            .as_ref()
            .filter(|f| !f.is_file())
            .map(|f| format!("ca_file {} does not exist", f.display())),
        C::Http(_) => None,
        C::Ingest => Some(
            "kind = \"ingest\" is kith's own event log: it is added by the [ingest] section, not declared as a source".into(),
        ),
    }
}

/// TOML's own message carries the line and a caret; keep it, one line shorter.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    match line {
        Some(l) => format!("line {l}: {}", e.message()),
        None => e.message().to_string(),
    }
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(segments: &[Seg]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The line of the deepest part of `segments` present in the text.
fn locate(text: &str, segments: &[Seg]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut table = Some(root.get_ref());
    let mut array: Option<&toml::de::DeArray> = None;
    for seg in segments {
        let next = match (seg, table, array) {
            (Seg::Key(k), Some(t), _) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| (key.span(), v)),
            (Seg::Index(i), _, Some(a)) => a.get(*i).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((s, v)) = next else { break };
        span = s;
        table = None;
        array = None;
        match v.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("kith.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"
[hub]
store = "hub.db"

[[sources]]
name = "shop"
connection = { kind = "csv", dir = "." }
[sources.identity]
from = "customers.csv"
key = "id"
attributes = { email = "email" }

[[sources]]
name = "billing"
connection = { kind = "sqlite", path = "billing.db" }
[sources.identity]
from = "customers"
key = "id"
attributes = { email = "email" }
[sources.facts.orders]
from = "orders"
join = "customer_id"
kind = "transaction"
"#;

    #[test]
    fn a_good_file_loads_with_paths_resolved() {
        let d = tempfile::tempdir().unwrap();
        let c = Config::load(&write(d.path(), GOOD)).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.store_path, d.path().join("hub.db"));
        match &c.sources[1].connection {
            kith_connect::ConnectorConfig::Sqlite { path } => {
                assert_eq!(path, &d.path().join("billing.db"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_and_unknown_fields_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        let e = Config::load(&write(d.path(), &GOOD.replace("join = ", "jion = ")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kith.toml"), "{e}");
        assert!(e.contains("jion"), "{e}");
        assert!(e.contains("line 22"), "{e}");

        let e = Config::load(&write(d.path(), "[hub\nstore = 1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn semantic_problems_name_file_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD
            .replace("kind = \"transaction\"", "kind = \"Big Orders\"")
            .replace("name = \"billing\"", "name = \"shop\"");
        let e = Config::load(&write(d.path(), &text)).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(problems.len(), 2, "{e}");
        assert_eq!(problems[0].field, "sources[1].name");
        assert_eq!(problems[0].line, Some(14));
        assert_eq!(problems[1].field, "sources[1].facts.orders.kind");
        assert_eq!(problems[1].line, Some(23));
        assert!(
            e.to_string()
                .contains("kith.toml:23: sources[1].facts.orders.kind"),
            "{e}"
        );
    }

    #[test]
    fn hub_settings_out_of_range_are_named() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD.replace(
            "store = \"hub.db\"",
            "store = \"hub.db\"\ncommon_identifier_limit = 0",
        );
        let e = Config::load(&write(d.path(), &text))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kith.toml:4: hub.common_identifier_limit"),
            "{e}"
        );
    }

    #[test]
    fn never_link_rules_are_read_and_bad_ones_named() {
        let d = tempfile::tempdir().unwrap();
        let rules = "\n[[hub.never_link]]\nname = \"ids differ\"\n\
                     when = \"external_id is else\"\n\
                     unless = \"email is exact or phone at_least one_edit\"\n";
        let text = GOOD.replacen("\n[[sources]]", &format!("{rules}\n[[sources]]"), 1);
        let c = Config::load(&write(d.path(), &text)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.hub.never_link.len(),
            1,
            "naming rules replaces the defaults"
        );
        assert_eq!(
            c.hub.never_link[0].unless.as_ref().unwrap().to_string(),
            "email is exact or phone at_least one_edit"
        );

        let e = Config::load(&write(d.path(), &text.replace("is else", "is different")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("external_id has no level `different`")
                && e.contains("exact, one_edit, else"),
            "{e}"
        );
        assert!(e.contains("kith.toml") && e.contains("line 7"), "{e}");

        let twice = text.replace(
            "[[hub.never_link]]",
            "[[hub.never_link]]\nname = \"ids differ\"\nwhen = \"email is else\"\n[[hub.never_link]]",
        );
        let e = Config::load(&write(d.path(), &twice))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hub.never_link") && e.contains("two rules are named `ids differ`"),
            "{e}"
        );

        let c = Config::load(&write(d.path(), GOOD)).unwrap();
        assert_eq!(c.hub.never_link, kith_resolve::default_never_link());
    }

    #[test]
    fn the_shipped_examples_are_valid() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/billing-postgres-support-mariadb.toml"
        ));
        let c = Config::load(p).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<&str> = c.sources.iter().map(|s| s.connection.kind()).collect();
        assert_eq!(kinds, vec!["postgres", "mysql", "http"]);
    }

    #[test]
    fn a_password_in_a_url_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let text = GOOD.replace(
            "connection = { kind = \"sqlite\", path = \"billing.db\" }",
            "connection = { kind = \"postgres\", url = \"postgres://kith:hunter2@db/billing\" }",
        );
        let e = Config::load(&write(d.path(), &text))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sources[1].connection.url") && e.contains("password_env"),
            "{e}"
        );
        assert!(
            !e.contains("hunter2"),
            "the password is never repeated: {e}"
        );
    }

    #[test]
    fn change_feed_mistakes_name_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "{GOOD}\n[[changes.webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/k\"\nsecret_env = \"CRM\"\n\n[[changes.webhooks]]\nname = \"shop\"\nurl = \"shop.example.com\"\nsecret_env = \"SHOP\"\n"
        );
        let e = Config::load(&write(d.path(), &text))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kith.toml:32: changes.webhooks[1].url"), "{e}");
        let c = Config::load(&write(
            d.path(),
            &text.replace("shop.example.com", "https://shop.example.com"),
        ))
        .unwrap();
        assert_eq!(c.changes.webhooks.len(), 2);
        assert!(c.changes.nats.is_none());
    }

    #[test]
    fn missing_file_and_folder_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = Config::load(&d.path().join("nope.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.toml"), "{e}");
        let e = Config::load(&write(
            d.path(),
            &GOOD.replace("dir = \".\"", "dir = \"shop\""),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("sources[0].connection") && e.contains("does not exist"),
            "{e}"
        );
    }
}
