//! The frame every page shares. Pages are server-rendered with askama; each
//! page template `{% extends "base.html" %}` and carries a [`Chrome`].
//!
//! Portal and console crates find `base.html` through their `askama.toml`
//! (`dirs = ["templates", "../web/templates"]`).

/// What the shared frame needs: the title, who is signed in, and the
/// anti-forgery token for the sign-out form.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub title: String,
    /// `portal`, `console` or empty.
    pub area: &'static str,
    /// Shown top right: the customer's masked identifier or the staff member's name.
    pub signed_in_as: Option<String>,
    /// The session's CSRF token (present when signed in).
    pub csrf: Option<String>,
    /// (href, label, current) for the area's navigation.
    pub nav: Vec<(String, String, bool)>,
    /// A one-line notice shown at the top (e.g. "Your correction was sent").
    pub notice: Option<String>,
}

impl Chrome {
    /// A page outside any signed-in area (sign-in, errors).
    pub fn bare(title: &str) -> Self {
        Chrome {
            title: title.to_string(),
            ..Default::default()
        }
    }

    /// Where the sign-out form posts.
    pub fn sign_out_action(&self) -> &'static str {
        match self.area {
            "console" => "/staff/sign-out",
            _ => "/sign-out",
        }
    }
}

/// Formats a timestamp for people: `2026-11-23 14:05 UTC`.
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A JSON value for people: strings without quotes, objects as `key: value, …`.
pub fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        // Sources write times as ISO-8601; people read them as dates.
        serde_json::Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => when(&t.with_timezone(&chrono::Utc)),
            Err(_) => s.clone(),
        },
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), show(v)))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Array(a) => a.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_like_text() {
        assert_eq!(show(&serde_json::json!("x")), "x");
        assert_eq!(
            show(&serde_json::json!({"a": 1, "b": null, "c": "d"})),
            "a: 1, c: d"
        );
        assert_eq!(show(&serde_json::Value::Null), "—");
    }
}
