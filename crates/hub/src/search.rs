//! Finding parties by what people remember of them: part of a name (with
//! typos), an e-mail address or part of one, or a phone number or its digits.
//!
//! Search reads the identity index, so it finds everyone kith has linked —
//! customers, former customers and prospects — without asking any source.

use std::collections::HashMap;

use kith_model::{PartyId, normalize};
use serde::Serialize;
use strsim::jaro_winkler;

use crate::{Hub, Result};

/// One party found, best first.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub party: PartyId,
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub sources: Vec<String>,
    /// 0..=1: how well the best of its records matched.
    pub score: f64,
    /// What matched, for people: `name ~ "Jon Smyth"`, `email`, `phone`.
    pub matched: String,
}

/// How well a query matches a name: every query word must be close to some
/// word of the name (prefixes count, so "margar" finds Margaret).
fn name_score(query_words: &[String], name: &str) -> f64 {
    let words: Vec<String> = normalize::text(name)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if words.is_empty() || query_words.is_empty() {
        return 0.0;
    }
    let mut total = 0.0;
    for q in query_words {
        let best = words
            .iter()
            .map(|w| {
                if w == q {
                    1.0
                } else if q.len() >= 3 && w.starts_with(q.as_str()) {
                    0.95
                } else {
                    jaro_winkler(q, w)
                }
            })
            .fold(0.0, f64::max);
        if best < 0.84 {
            return 0.0;
        }
        total += best;
    }
    total / query_words.len() as f64
}

impl Hub {
    /// Parties matching `query`, best first, at most `limit`.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let q = query.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let lower = q.to_lowercase();
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let phone_query = digits.len() >= 4
            && q.chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        let email_query = q.contains('@');
        let words: Vec<String> = normalize::text(q)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        // A national number typed by staff ("07700 900123") matches its E.164 form.
        let national = normalize::phone(q, self.calling_code)
            .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>());

        let mut best: HashMap<PartyId, (f64, String)> = HashMap::new();
        let mut records_of: HashMap<PartyId, Vec<kith_store::StoredRecord>> = HashMap::new();
        for r in self.store.records().await? {
            let Some(party) = r.party.clone() else {
                continue;
            };
            let a = &r.record.attrs;
            let mut hit: Option<(f64, String)> = None;
            if email_query || (!phone_query && q.len() >= 3) {
                for e in &a.emails {
                    let e = e.to_lowercase();
                    let s = if e == lower {
                        1.0
                    } else if e.starts_with(&lower) {
                        0.9
                    } else if lower.len() >= 3 && e.contains(&lower) {
                        0.8
                    } else {
                        0.0
                    };
                    if s > hit.as_ref().map_or(0.0, |h| h.0) {
                        hit = Some((s, "email".into()));
                    }
                }
            }
            if phone_query {
                for p in &a.phones {
                    let pd: String = p.chars().filter(char::is_ascii_digit).collect();
                    let s = if national.as_deref().is_some_and(|n| n == pd) {
                        1.0
                    } else if pd.contains(&digits)
                        || national.as_deref().is_some_and(|n| pd.contains(n))
                    {
                        0.85
                    } else {
                        0.0
                    };
                    if s > hit.as_ref().map_or(0.0, |h| h.0) {
                        hit = Some((s, "phone".into()));
                    }
                }
            }
            if !email_query && !phone_query {
                let names = [a.display_name(), a.org_name.clone()];
                for n in names.into_iter().flatten() {
                    let s = name_score(&words, &n) * 0.99;
                    if s > hit.as_ref().map_or(0.0, |h| h.0) {
                        hit = Some((s, format!("name ~ \"{n}\"")));
                    }
                }
            }
            if let Some(h) = hit.filter(|h| h.0 > 0.0) {
                let e = best.entry(party.clone()).or_insert((0.0, String::new()));
                if h.0 > e.0 {
                    *e = h;
                }
            }
            records_of.entry(party).or_default().push(r);
        }

        let mut hits: Vec<SearchHit> = best
            .into_iter()
            .map(|(party, (score, matched))| {
                let records = records_of.remove(&party).unwrap_or_default();
                let mut emails: Vec<String> = Vec::new();
                let mut phones: Vec<String> = Vec::new();
                let mut sources: Vec<String> = Vec::new();
                let mut name = None;
                for r in &records {
                    let a = &r.record.attrs;
                    name = name.or_else(|| a.display_name().or_else(|| a.org_name.clone()));
                    for e in &a.emails {
                        if !emails.contains(e) {
                            emails.push(e.clone());
                        }
                    }
                    for p in &a.phones {
                        if !phones.contains(p) {
                            phones.push(p.clone());
                        }
                    }
                    if !sources.contains(&r.record.record.source) {
                        sources.push(r.record.record.source.clone());
                    }
                }
                SearchHit {
                    party,
                    name,
                    emails,
                    phones,
                    sources,
                    score,
                    matched,
                }
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.party.cmp(&b.party))
        });
        hits.truncate(limit);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<String> {
        normalize::text(q)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn names_match_with_typos_and_prefixes() {
        assert!(name_score(&words("Margaret Thompson"), "Margaret Thompson") > 0.99);
        assert!(name_score(&words("margret tompson"), "Margaret Thompson") > 0.85);
        assert!(name_score(&words("marg"), "Margaret Thompson") > 0.9);
        assert_eq!(name_score(&words("zed"), "Margaret Thompson"), 0.0);
        assert_eq!(
            name_score(&words("Margaret Jones"), "Margaret Thompson"),
            0.0
        );
    }
}
