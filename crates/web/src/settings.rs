//! The `[server]` section of kith.toml, deserialised and validated once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// How the server runs. Every field has a default, so `[server]` may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Where `kith serve` listens unless `--listen` says otherwise.
    pub listen: SocketAddr,
    /// The address people use to reach kith (for links in messages), e.g. `https://kith.example.com`.
    pub public_url: Option<String>,
    /// Send cookies only over HTTPS. Defaults to whether `public_url` is https.
    pub secure_cookies: Option<bool>,
    /// A session ends after this long without a request.
    #[serde(with = "kith_connect::duration::required")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however busy.
    #[serde(with = "kith_connect::duration::required")]
    pub session_max: Duration,
    /// How long a one-time sign-in code works.
    #[serde(with = "kith_connect::duration::required")]
    pub code_ttl: Duration,
    /// Wrong guesses allowed against one code before it stops working.
    pub code_attempts: u32,
    /// Codes one identifier may be sent per `code_window`.
    pub codes_per_window: u32,
    #[serde(with = "kith_connect::duration::required")]
    pub code_window: Duration,
    /// How one-time codes reach customers.
    pub sender: SenderConfig,
    /// What a customer is "in the middle of", shown first on the staff console's party page.
    pub situations: Vec<SituationRule>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            public_url: None,
            secure_cookies: None,
            session_idle: minutes(30),
            session_max: minutes(12 * 60),
            code_ttl: minutes(10),
            code_attempts: 5,
            codes_per_window: 3,
            code_window: minutes(15),
            sender: SenderConfig::Log,
            situations: Vec::new(),
        }
    }
}

impl ServerSettings {
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            self.public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }

    /// Every problem, as (field path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.session_idle.is_zero() {
            out.push((
                "server.session_idle".into(),
                "must be longer than zero".into(),
            ));
        }
        if self.session_max < self.session_idle {
            out.push((
                "server.session_max".into(),
                "must be at least server.session_idle".into(),
            ));
        }
        if self.code_ttl.is_zero() || self.code_ttl > minutes(60) {
            out.push((
                "server.code_ttl".into(),
                "must be between 1s and 1h: a code is a password".into(),
            ));
        }
        if self.code_attempts == 0 || self.code_attempts > 10 {
            out.push(("server.code_attempts".into(), "must be 1 to 10".into()));
        }
        if self.codes_per_window == 0 {
            out.push((
                "server.codes_per_window".into(),
                "must be at least 1".into(),
            ));
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            out.push((
                "server.public_url".into(),
                format!("{u:?} must start with http:// or https://"),
            ));
        }
        out.extend(self.sender.problems());
        for (i, s) in self.situations.iter().enumerate() {
            let at = format!("server.situations[{i}]");
            if s.label.trim().is_empty() {
                out.push((format!("{at}.label"), "must not be empty".into()));
            }
            if s.field.is_none() && s.date_field.is_none() {
                out.push((
                    at.clone(),
                    "needs `field` with `any_of`, or `date_field` with `within`".into(),
                ));
            }
            if s.field.is_some() && s.any_of.is_empty() {
                out.push((
                    format!("{at}.any_of"),
                    "must list the values that count".into(),
                ));
            }
            if s.date_field.is_some() && s.within.is_none() {
                out.push((
                    format!("{at}.within"),
                    "must say how soon, e.g. \"14d\"".into(),
                ));
            }
        }
        out
    }
}

/// How one-time sign-in codes are delivered.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SenderConfig {
    /// Print the code to the server's own output (the demo's choice: nothing to set up).
    Log,
    /// Append each message as a JSON line to `dir/messages.jsonl` (for tests and
    /// for a mail relay that picks files up).
    File { dir: PathBuf },
    /// E-mail each code through an SMTP relay. It reaches e-mail addresses
    /// only: a customer signing in with a phone number gets no code.
    Smtp {
        host: String,
        #[serde(default = "default_smtp_port")]
        port: u16,
        /// The sender, `no-reply@example.com` or `Example <no-reply@example.com>`.
        from: String,
        /// The environment variables holding the relay's user name and
        /// password (both or neither): secrets never live in the file.
        #[serde(default)]
        username_env: Option<String>,
        #[serde(default)]
        password_env: Option<String>,
        /// Require STARTTLS (the default). `false` talks to the relay in clear:
        /// only for a relay on the same machine, and never with a password.
        #[serde(default = "default_starttls")]
        starttls: bool,
    },
}

fn default_smtp_port() -> u16 {
    587
}
fn default_starttls() -> bool {
    true
}

impl SenderConfig {
    /// Problems of the sender's settings, as (field under `server.sender`, message).
    fn problems(&self) -> Vec<(String, String)> {
        let SenderConfig::Smtp {
            host,
            port,
            from,
            username_env,
            password_env,
            starttls,
        } = self
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut problem = |field: &str, message: String| {
            out.push((format!("server.sender.{field}"), message));
        };
        if host.trim().is_empty() {
            problem("host", "must name the SMTP relay".into());
        } else if *starttls
            && let Err(e) = lettre::transport::smtp::client::TlsParameters::new(host.clone())
        {
            problem("host", format!("{host:?} cannot be used for TLS: {e}"));
        }
        if *port == 0 {
            problem("port", "must be a port number (587 for STARTTLS)".into());
        }
        if from.parse::<lettre::message::Mailbox>().is_err() {
            problem(
                "from",
                format!(
                    "{from:?} is not an e-mail address (write no-reply@example.com or \"Example <no-reply@example.com>\")"
                ),
            );
        }
        if username_env.is_some() != password_env.is_some() {
            problem(
                "username_env",
                "set both username_env and password_env, or neither".into(),
            );
        }
        for (field, var) in [
            ("username_env", username_env),
            ("password_env", password_env),
        ] {
            if let Some(var) = var
                && std::env::var(var).map_or(true, |v| v.is_empty())
            {
                problem(field, format!("the environment variable {var} is not set"));
            }
        }
        if username_env.is_some() && !*starttls {
            problem(
                "starttls",
                "must be true when the relay needs a password: it would travel in clear".into(),
            );
        }
        out
    }
}

/// A rule for what a customer is in the middle of: facts of `kind` whose
/// `field` is one of `any_of` (an open case, an order in flight), or whose
/// `date_field` falls within `within` from now (a trial ending, a renewal due).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SituationRule {
    pub label: String,
    pub kind: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub any_of: Vec<String>,
    #[serde(default)]
    pub date_field: Option<String>,
    #[serde(default, with = "kith_connect::duration::option")]
    pub within: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_durations_parse() {
        assert!(ServerSettings::default().problems().is_empty());
        assert_eq!(
            kith_connect::duration::parse("14d").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert!(kith_connect::duration::parse("soon").is_err());
    }

    fn smtp(sender: serde_json::Value) -> Vec<(String, String)> {
        ServerSettings {
            sender: serde_json::from_value(sender).unwrap(),
            ..Default::default()
        }
        .problems()
    }

    #[test]
    fn smtp_settings_are_checked_at_start_up() {
        let ok = smtp(serde_json::json!({
            "kind": "smtp", "host": "smtp.example.com", "from": "Example <no-reply@example.com>"
        }));
        assert!(ok.is_empty(), "{ok:?}");
        let p = smtp(serde_json::json!({
            "kind": "smtp", "host": "", "from": "nobody",
            "username_env": "KITH_TEST_SMTP_USER_NOT_SET", "starttls": false
        }));
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "server.sender.host",
                "server.sender.from",
                "server.sender.username_env",
                "server.sender.username_env",
                "server.sender.starttls"
            ],
            "{p:?}"
        );
        assert!(p[3].1.contains("KITH_TEST_SMTP_USER_NOT_SET is not set"));
    }

    #[test]
    fn situations_need_a_test() {
        let s = ServerSettings {
            situations: vec![SituationRule {
                label: "Open case".into(),
                kind: "case".into(),
                field: None,
                any_of: vec![],
                date_field: None,
                within: None,
            }],
            ..Default::default()
        };
        let p = s.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "server.situations[0]");
    }
}
