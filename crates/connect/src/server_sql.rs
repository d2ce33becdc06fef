//! What the PostgreSQL and MySQL/MariaDB connectors share: their connection
//! configuration. Credentials never appear in the file: the URL carries no
//! password, `password_env` names the environment variable that holds it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection to a database server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlServerConfig {
    /// `postgres://user@host:5432/db` or `mysql://user@host:3306/db`, without a password.
    pub url: String,
    /// Environment variable holding the password, read at start-up and never logged.
    #[serde(default)]
    pub password_env: Option<String>,
    /// TLS: `disable`, `prefer` (default), `require`, `verify_ca` or `verify_full`.
    #[serde(default)]
    pub tls: TlsMode,
    /// CA certificate (PEM) for `verify_ca` / `verify_full`, relative to the configuration file.
    /// Without one, certificates are checked against the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Most connections kith opens to this source.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Time allowed to connect.
    #[serde(
        default = "default_connect_timeout",
        with = "crate::duration::required"
    )]
    pub connect_timeout: Duration,
    /// Time allowed for one query, enforced by the server.
    #[serde(default = "default_query_timeout", with = "crate::duration::required")]
    pub query_timeout: Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

fn default_max_connections() -> u32 {
    4
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_query_timeout() -> Duration {
    Duration::from_secs(5)
}

impl SqlServerConfig {
    /// The URL with any user info but the user name removed, for messages.
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let userinfo = &self.url[s + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}@{}", &self.url[..s + 3], &self.url[at + 1..])
            }
            _ => self.url.clone(),
        }
    }

    /// Problems with the configuration itself, by field.
    pub fn problems(&self, scheme: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let ok_scheme = scheme
            .iter()
            .any(|s| self.url.starts_with(&format!("{s}://")));
        if !ok_scheme {
            out.push((
                "connection.url".to_string(),
                format!("must start with {}://", scheme.join(":// or ")),
            ));
        }
        if let (Some(s), Some(at)) = (self.url.find("://"), self.url.rfind('@'))
            && at > s
            && self.url[s + 3..at].contains(':')
        {
            out.push((
                "connection.url".to_string(),
                "must not contain a password: name an environment variable in password_env"
                    .to_string(),
            ));
        }
        if self.max_connections == 0 {
            out.push((
                "connection.max_connections".to_string(),
                "must be at least 1".to_string(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> SqlServerConfig {
        toml::from_str(&format!("url = {url:?}")).unwrap()
    }

    #[test]
    fn passwords_stay_out_of_urls_and_messages() {
        let c = cfg("postgres://kith:secret@db:5432/billing");
        assert_eq!(c.redacted_url(), "postgres://kith@db:5432/billing");
        let p = c.problems(&["postgres", "postgresql"]);
        assert_eq!(p.len(), 1);
        assert!(p[0].1.contains("password_env"));
        assert!(
            cfg("postgres://kith@db/billing")
                .problems(&["postgres"])
                .is_empty()
        );
        assert_eq!(cfg("mysql://db/x").problems(&["postgres"]).len(), 1);
        assert_eq!(c.tls, TlsMode::Prefer);
        assert_eq!(c.query_timeout, Duration::from_secs(5));
    }
}
