//! Terminal reports: a 360 view and a sync summary that read well in a terminal.

use std::fmt::Write;

use kith_hub::{SourceStatus, SyncReport, View};
use kith_model::{Cardinality, Fact, FactKind, Timestamp};
use serde_json::Value;

/// How many facts of one kind the terminal report lists before "… and N more".
const PER_KIND: usize = 8;

fn date(t: Option<Timestamp>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "undated".into())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.replace('\n', ", "),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// One line for a many-valued fact: its fields in order, empty ones left out.
fn summary(f: &Fact) -> String {
    match &f.value {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}: {}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" · "),
        other => scalar(other),
    }
}

fn heading(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}\n{}", "─".repeat(title.chars().count()));
}

/// The 360 view as a terminal report.
pub fn view(v: &View) -> String {
    let mut out = String::new();
    let name = v.name.clone().unwrap_or_else(|| "(no name)".into());
    let relation = v
        .relation
        .map(|r| r.as_str().replace('_', " "))
        .unwrap_or_else(|| "relation unknown".into());
    let _ = writeln!(
        out,
        "{name}  ·  {}  ·  {}  ·  {relation}",
        v.party,
        v.kind.as_str()
    );
    let _ = writeln!(
        out,
        "party since {}  ·  view gathered {}",
        date(Some(v.created_at)),
        v.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
    );

    heading(&mut out, "Sources");
    for s in &v.sources {
        let mark = match s.status {
            SourceStatus::Ok => "ok",
            SourceStatus::NotLinked => "–",
            _ => "!!",
        };
        let verified = if s.verified { " (verified)" } else { "" };
        let _ = write!(out, "  {mark:>2} {:<14} {:<13}", s.name, s.status.as_str());
        if s.status != SourceStatus::NotLinked {
            let _ = write!(
                out,
                " {} record(s), {} fact(s), {} ms{verified}",
                s.records, s.facts, s.elapsed_ms
            );
        }
        if let Some(r) = &s.reason {
            let _ = write!(out, "\n       reason: {r}");
        }
        for p in &s.problems {
            let _ = write!(out, "\n       skipped row: {p}");
        }
        out.push('\n');
    }

    if !v.profile.is_empty() {
        heading(
            &mut out,
            "Profile (best value by survivorship; conflicts shown with their sources)",
        );
        for a in &v.profile {
            let flag = if a.conflict { "  ⚠ conflict" } else { "" };
            let _ = writeln!(
                out,
                "  {:<16} {}  [{}]{flag}",
                a.attribute,
                scalar(&a.best),
                a.best_source
            );
            if a.conflict {
                for f in &a.values {
                    let _ = writeln!(
                        out,
                        "  {:<16}   {} — {} {}, updated {}",
                        "",
                        scalar(&f.value),
                        f.provenance.source,
                        f.provenance.key,
                        date(f.provenance.updated_at)
                    );
                }
            }
        }
    }

    let mut kinds: Vec<&FactKind> = Vec::new();
    for f in v
        .facts
        .iter()
        .filter(|f| f.cardinality == Cardinality::Many || f.kind.as_str() != FactKind::PROFILE)
    {
        if f.kind.as_str() != FactKind::PROFILE && !kinds.contains(&&f.kind) {
            kinds.push(&f.kind);
        }
    }
    for kind in kinds {
        let facts: Vec<&Fact> = v.facts.iter().filter(|f| &f.kind == kind).collect();
        heading(
            &mut out,
            &format!("{} ({})", title(kind.as_str()), facts.len()),
        );
        for f in facts.iter().take(PER_KIND) {
            let what = match &f.attribute {
                Some(a) => format!("{a}: {}", scalar(&f.value)),
                None => summary(f),
            };
            let _ = writeln!(
                out,
                "  {}  {what}",
                date(f.date.or(f.provenance.updated_at))
            );
            let _ = writeln!(
                out,
                "              ↳ {} {} / {}",
                f.provenance.source, f.provenance.key, f.provenance.fact_set
            );
        }
        if facts.len() > PER_KIND {
            let _ = writeln!(
                out,
                "  … and {} more (use --json for all)",
                facts.len() - PER_KIND
            );
        }
    }

    if !v.relationships.is_empty() {
        heading(&mut out, "Relationships");
        for r in &v.relationships {
            let _ = writeln!(
                out,
                "  {:<12} {:<9} {} {}  ({})",
                r.kind.as_str(),
                r.role,
                r.name.as_deref().unwrap_or("(no name)"),
                r.party,
                r.evidence
            );
        }
    }

    heading(&mut out, "Linked records (why they are this party)");
    for r in &v.records {
        let _ = writeln!(out, "  {}:{}  rule {}", r.source, r.key, r.rule);
        for e in &r.evidence {
            let _ = writeln!(out, "      {e}");
        }
    }
    out
}

fn title(kind: &str) -> String {
    let pretty = match kind {
        "account" => "Accounts",
        "holding" => "Products and services held",
        "entitlement" => "Entitlements",
        "transaction" => "Orders and transactions",
        "interaction" => "Interactions",
        "case" => "Cases",
        "offer" => "Offers and responses",
        "preference" => "Preferences",
        "consent" => "Consents",
        "feedback" => "Feedback",
        other => return other.replace('_', " "),
    };
    pretty.to_string()
}

/// The summary printed after `kith sync`.
pub fn sync(r: &SyncReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>8} {:>6} {:>8} {:>10} {:>12} {:>8} {:>7}",
        "source",
        "mode",
        "read",
        "new",
        "changed",
        "unchanged",
        "quarantined",
        "removed",
        "seconds"
    );
    for s in &r.sources {
        let _ = writeln!(
            out,
            "{:<14} {:>5} {:>8} {:>6} {:>8} {:>10} {:>12} {:>8} {:>7.2}",
            s.source,
            if s.full { "full" } else { "incr" },
            s.read,
            s.inserted,
            s.updated,
            s.unchanged,
            s.quarantined,
            s.removed,
            s.seconds
        );
        if let Some(e) = &s.error {
            let _ = writeln!(
                out,
                "  !! {} failed, nothing of it was removed: {e}",
                s.source
            );
        }
        if s.suppressed > 0 {
            let _ = writeln!(
                out,
                "  {} record(s) of {} skipped: erased on request",
                s.suppressed, s.source
            );
        }
    }
    let l = &r.link;
    let _ = writeln!(
        out,
        "linked {} records into {} parties ({} new, {} merged, {} retired, {} links changed, {} relationships)",
        l.records, l.parties, l.new_parties, l.merged, l.retired, l.links_changed, l.relationships
    );
    if l.candidate_pairs > 0 {
        let _ = writeln!(
            out,
            "model: {} candidate pairs, {} queued for review, {} review decisions applied",
            l.candidate_pairs, l.queued_for_review, l.decisions
        );
    }
    for (rule, n) in &l.vetoed_by {
        let _ = writeln!(out, "never-link rule \"{rule}\" kept {n} pair(s) apart");
    }
    if !l.common_identifiers.is_empty() {
        let _ = writeln!(
            out,
            "ignored {} identifier(s) shared by too many records to mean one person",
            l.common_identifiers.len()
        );
    }
    let q: u64 = r.sources.iter().map(|s| s.quarantined).sum();
    if q > 0 {
        let _ = writeln!(
            out,
            "{q} row(s) quarantined: see `kith quarantine` for where and why"
        );
    }
    out
}

/// The comparisons between two records as a waterfall of weights.
pub fn explanation(a: &str, b: &str, e: &kith_resolve::Explanation, trained: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{a}  vs  {b}");
    if !trained {
        let _ = writeln!(
            out,
            "(no trained model: shipped prior probabilities; run `kith train`)"
        );
    }
    let bar = |w: f64| {
        let n = (w.abs() * 2.0).round().min(30.0) as usize;
        if w >= 0.0 {
            format!("{:>30}|{}", "", "█".repeat(n))
        } else {
            format!("{:>30}|", "▒".repeat(n))
        }
    };
    let _ = writeln!(
        out,
        "  {:<16} {:<22} {:>7}  {}",
        "prior",
        "",
        e.prior_weight,
        bar(e.prior_weight)
    );
    for c in &e.comparisons {
        let level = c.level.as_deref().unwrap_or("missing");
        let _ = writeln!(
            out,
            "  {:<16} {:<22} {:>+7.2}  {}",
            format!("{:?}", c.attribute).to_lowercase(),
            level,
            c.weight,
            bar(c.weight)
        );
    }
    let _ = writeln!(
        out,
        "  {:<16} {:<22} {:>+7.2}  match probability {:.4} → {}",
        "total",
        "",
        e.total_weight,
        e.probability,
        match &e.never_link {
            Some(_) => "no link",
            None if e.decision.link => "link",
            None if e.decision.review => "review",
            None => "no link",
        }
    );
    if let Some(rule) = &e.never_link {
        let _ = writeln!(out, "  never linked, whatever the score: rule \"{rule}\"");
    }
    out
}

/// A party's timeline: one line per dated fact, newest first, with where it came from.
pub fn timeline(v: &View, entries: &[&Fact]) -> String {
    let mut out = String::new();
    let name = v.name.clone().unwrap_or_else(|| "(no name)".into());
    let _ = writeln!(out, "Timeline of {name} ({}), newest first", v.party);
    for s in v.sources.iter().filter(|s| {
        !matches!(
            s.status,
            SourceStatus::Ok | SourceStatus::NotLinked | SourceStatus::IdentityOnly
        )
    }) {
        let _ = writeln!(
            out,
            "  ! {} {}{}",
            s.name,
            s.status.as_str(),
            s.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if entries.is_empty() {
        let _ = writeln!(out, "  (nothing dated)");
    }
    for f in entries {
        let when = f
            .date
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {when}  {:<12} {:<10} {}",
            f.kind.as_str(),
            f.provenance.source,
            one_line(&f.value)
        );
    }
    out
}

fn one_line(v: &Value) -> String {
    let s = match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(99).collect::<String>())
    } else {
        s
    }
}
