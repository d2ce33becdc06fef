//! Writing the demo sources in their native formats: SQLite databases, CSV
//! with proper quoting (plus the deliberately broken rows), and JSON lines.
//! Each source's writer hands out its record keys and returns them in the
//! order of the rows it was given, for the answer key `truth.csv`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};

use super::generate::{
    Answer, BROKEN_ROW_EMAILS, BillingCustomer, Invoice, MarketingContact, Member, Offer, Order,
    SHOWCASE_CARD, ShopCustomer, Subscription, SupportContact, Ticket, fmt_day, fmt_pence, fmt_ts,
};

/// A value bound into an INSERT.
enum V {
    T(String),
    I(i64),
    R(f64),
    N,
}

fn opt(v: Option<String>) -> V {
    v.map(V::T).unwrap_or(V::N)
}

/// Replaces any previous database (and its journal files) with an empty one.
async fn fresh_db(path: &Path) -> Result<SqliteConnection> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot remove {}", Path::new(&p).display()));
            }
        }
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete);
    SqliteConnection::connect_with(&opts)
        .await
        .with_context(|| format!("cannot create {}", path.display()))
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("failed: {sql}"))?;
    Ok(())
}

/// Inserts rows in multi-row statements inside one transaction: row-at-a-time
/// inserts would make a 3,000-person demo take seconds in a debug build.
async fn insert(
    conn: &mut SqliteConnection,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<V>>,
) -> Result<usize> {
    const ROWS_PER_STATEMENT: usize = 200;
    let n = rows.len();
    let mut tx = conn.begin().await?;
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            cols.join(", "),
            vec![one.as_str(); chunk.len()].join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = match v {
                    V::T(s) => q.bind(s.clone()),
                    V::I(i) => q.bind(*i),
                    V::R(r) => q.bind(*r),
                    V::N => q.bind(None::<String>),
                };
            }
        }
        q.execute(&mut *tx)
            .await
            .with_context(|| format!("cannot insert into {table}"))?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Returns the `customers.id` of each customer, in order.
pub(super) async fn write_billing(
    path: &Path,
    customers: &[BillingCustomer],
    counts: &mut BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    let mut conn = fresh_db(path).await?;
    exec(
        &mut conn,
        "CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            first_name TEXT,
            last_name TEXT,
            company TEXT,
            email TEXT,
            phone TEXT,
            street TEXT,
            city TEXT,
            postcode TEXT,
            date_of_birth TEXT,
            status TEXT NOT NULL,
            plan TEXT,
            updated_at TEXT NOT NULL
        )",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE TABLE invoices (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            number TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            amount REAL NOT NULL,
            currency TEXT NOT NULL,
            status TEXT NOT NULL
        )",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            product TEXT NOT NULL,
            started_at TEXT NOT NULL,
            renews_at TEXT,
            status TEXT NOT NULL
        )",
    )
    .await?;

    let rows = customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                V::I(i as i64 + 1),
                V::T(c.kind.into()),
                opt(c.first_name.clone()),
                opt(c.last_name.clone()),
                opt(c.company.clone()),
                V::T(c.email.clone()),
                opt(c.phone.clone()),
                V::T(c.address.street.clone()),
                V::T(c.address.city.into()),
                V::T(c.address.postcode.clone()),
                opt(c.date_of_birth.map(fmt_day)),
                V::T(c.status.into()),
                V::T(c.plan.into()),
                V::T(fmt_ts(c.updated_at)),
            ]
        })
        .collect();
    let n = insert(
        &mut conn,
        "customers",
        &[
            "id",
            "kind",
            "first_name",
            "last_name",
            "company",
            "email",
            "phone",
            "street",
            "city",
            "postcode",
            "date_of_birth",
            "status",
            "plan",
            "updated_at",
        ],
        rows,
    )
    .await?;
    counts.insert("billing.db:customers".into(), n);

    // Invoice numbers run in date order across all customers, as a real ledger's do.
    let mut invoices: Vec<(NaiveDate, i64, &Invoice)> = customers
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.invoices
                .iter()
                .map(move |inv| (inv.issued, i as i64 + 1, inv))
        })
        .collect();
    invoices.sort_by_key(|(d, id, _)| (*d, *id));
    let rows = invoices
        .iter()
        .enumerate()
        .map(|(i, (issued, customer_id, inv))| {
            vec![
                V::I(i as i64 + 1),
                V::I(*customer_id),
                V::T(format!("INV-{}-{:05}", issued.year(), i + 1)),
                V::T(fmt_day(*issued)),
                V::R(inv.pence as f64 / 100.0),
                V::T("GBP".into()),
                V::T(inv.status.into()),
            ]
        })
        .collect();
    let n = insert(
        &mut conn,
        "invoices",
        &[
            "id",
            "customer_id",
            "number",
            "issued_at",
            "amount",
            "currency",
            "status",
        ],
        rows,
    )
    .await?;
    counts.insert("billing.db:invoices".into(), n);

    let mut subs: Vec<(NaiveDate, i64, &Subscription)> = customers
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.subscriptions
                .iter()
                .map(move |s| (s.started, i as i64 + 1, s))
        })
        .collect();
    subs.sort_by_key(|(d, id, _)| (*d, *id));
    let rows = subs
        .iter()
        .enumerate()
        .map(|(i, (_, customer_id, s))| {
            vec![
                V::I(i as i64 + 1),
                V::I(*customer_id),
                V::T(s.product.into()),
                V::T(fmt_day(s.started)),
                opt(s.renews.map(fmt_day)),
                V::T(s.status.into()),
            ]
        })
        .collect();
    let n = insert(
        &mut conn,
        "subscriptions",
        &[
            "id",
            "customer_id",
            "product",
            "started_at",
            "renews_at",
            "status",
        ],
        rows,
    )
    .await?;
    counts.insert("billing.db:subscriptions".into(), n);

    exec(
        &mut conn,
        "CREATE INDEX customers_updated_at ON customers(updated_at)",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE INDEX invoices_customer_id ON invoices(customer_id)",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE INDEX subscriptions_customer_id ON subscriptions(customer_id)",
    )
    .await?;
    conn.close().await?;
    Ok((1..=customers.len()).map(|id| id.to_string()).collect())
}

/// Returns the `contacts.id` of each contact, in order.
pub(super) async fn write_support(
    path: &Path,
    contacts: &[SupportContact],
    counts: &mut BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    let mut conn = fresh_db(path).await?;
    exec(
        &mut conn,
        "CREATE TABLE contacts (
            id TEXT PRIMARY KEY,
            name TEXT,
            email TEXT,
            phone TEXT,
            updated_at TEXT NOT NULL
        )",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE TABLE tickets (
            id TEXT PRIMARY KEY,
            contact_email TEXT,
            subject TEXT NOT NULL,
            status TEXT NOT NULL,
            priority TEXT NOT NULL,
            channel TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            closed_at TEXT
        )",
    )
    .await?;
    let ids: Vec<String> = (0..contacts.len())
        .map(|i| format!("C-{}", 10_001 + i))
        .collect();
    let rows = contacts
        .iter()
        .zip(&ids)
        .map(|(c, id)| {
            vec![
                V::T(id.clone()),
                V::T(c.name.clone()),
                V::T(c.email.clone()),
                opt(c.phone.clone()),
                V::T(fmt_ts(c.updated_at)),
            ]
        })
        .collect();
    let n = insert(
        &mut conn,
        "contacts",
        &["id", "name", "email", "phone", "updated_at"],
        rows,
    )
    .await?;
    counts.insert("support.db:contacts".into(), n);

    let mut tickets: Vec<(&str, &Ticket)> = contacts
        .iter()
        .flat_map(|c| c.tickets.iter().map(move |t| (c.email.as_str(), t)))
        .collect();
    tickets.sort_by(|a, b| (a.1.opened, a.0).cmp(&(b.1.opened, b.0)));
    let rows = tickets
        .iter()
        .enumerate()
        .map(|(i, (email, t))| {
            vec![
                V::T(format!("T-{}", 40_001 + i)),
                V::T(email.to_string()),
                V::T(t.subject.into()),
                V::T(t.status.into()),
                V::T(t.priority.into()),
                V::T(t.channel.into()),
                V::T(fmt_ts(t.opened)),
                opt(t.closed.map(fmt_ts)),
            ]
        })
        .collect();
    let n = insert(
        &mut conn,
        "tickets",
        &[
            "id",
            "contact_email",
            "subject",
            "status",
            "priority",
            "channel",
            "opened_at",
            "closed_at",
        ],
        rows,
    )
    .await?;
    counts.insert("support.db:tickets".into(), n);

    exec(
        &mut conn,
        "CREATE INDEX contacts_updated_at ON contacts(updated_at)",
    )
    .await?;
    exec(
        &mut conn,
        "CREATE INDEX tickets_contact_email ON tickets(contact_email)",
    )
    .await?;
    conn.close().await?;
    Ok(ids)
}

fn csv_builder() -> csv::WriterBuilder {
    let mut b = csv::WriterBuilder::new();
    b.terminator(csv::Terminator::Any(b'\n'));
    b
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv_builder().from_writer(Vec::new())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Returns the `customer_id` of each customer, in order (the broken rows,
/// numbered after them, are not among them).
pub(super) fn write_shop(
    dir: &Path,
    customers: &[ShopCustomer],
    counts: &mut BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let first_id = 100_001;
    let broken_ids = [first_id + customers.len(), first_id + customers.len() + 1];
    // Rows a spreadsheet round-trip mangled, written raw where they would sit.
    let broken: [Vec<u8>; 2] = [
        format!(
            "{},Tom,Baker,{},,12 Canal Street,Leeds,LS6 3QT\n",
            broken_ids[0], BROKEN_ROW_EMAILS[0]
        )
        .into_bytes(),
        [
            format!("{},Jos", broken_ids[1]).as_bytes(),
            b"\xe9",
            format!(
                ",Ferreira,{},,3 Quay Street,Truro,TR1 2HE,2026-08-14T10:11:12Z,2026-08-14T10:11:12Z\n",
                BROKEN_ROW_EMAILS[1]
            )
            .as_bytes(),
        ]
        .concat(),
    ];
    let broken_at = [customers.len() / 3, 2 * customers.len() / 3];

    let header = [
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "postcode",
        "created_at",
        "updated_at",
    ];
    let mut out: Vec<u8> = Vec::new();
    let mut written = 0;
    let mut start = 0;
    // The csv writer cannot write a malformed row, so the file is written in
    // runs of good rows with the raw bad ones between them.
    for (b, end) in broken_at.into_iter().chain([customers.len()]).enumerate() {
        let mut w = csv_builder().from_writer(&mut out);
        if b == 0 {
            w.write_record(header)?;
        }
        for (i, c) in customers.iter().enumerate().take(end).skip(start) {
            w.write_record([
                (first_id + i).to_string().as_str(),
                c.first_name.as_str(),
                c.last_name.as_str(),
                c.email.as_str(),
                c.phone.as_deref().unwrap_or(""),
                c.address.as_str(),
                c.city.as_str(),
                c.postcode.as_str(),
                fmt_ts(c.created).as_str(),
                fmt_ts(c.updated).as_str(),
            ])?;
            written += 1;
        }
        w.flush()?;
        drop(w);
        if let Some(raw) = broken.get(b) {
            out.extend_from_slice(raw);
            written += 1;
        }
        start = end;
    }
    write_file(&dir.join("customers.csv"), &out)?;
    counts.insert("shop/customers.csv".into(), written);

    let mut orders: Vec<(usize, &Order)> = customers
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.orders.iter().map(move |o| (first_id + i, o)))
        .collect();
    orders.sort_by_key(|(id, o)| (o.placed, *id));
    let mut w = csv_writer();
    w.write_record([
        "order_id",
        "customer_id",
        "placed_at",
        "total",
        "items",
        "status",
    ])?;
    for (i, (customer_id, o)) in orders.iter().enumerate() {
        w.write_record([
            format!("W-{}", 250_001 + i).as_str(),
            customer_id.to_string().as_str(),
            fmt_ts(o.placed).as_str(),
            fmt_pence(o.pence).as_str(),
            o.items.as_str(),
            o.status,
        ])?;
    }
    write_file(&dir.join("orders.csv"), &w.into_inner()?)?;
    counts.insert("shop/orders.csv".into(), orders.len());
    Ok((0..customers.len())
        .map(|i| (first_id + i).to_string())
        .collect())
}

#[derive(Serialize)]
struct ContactJson<'a> {
    id: &'a str,
    name: &'a str,
    email: &'a str,
    consent: ConsentJson,
    source: &'a str,
    updated_at: String,
}

#[derive(Serialize)]
struct ConsentJson {
    newsletter: bool,
    sms: bool,
}

#[derive(Serialize)]
struct OfferJson<'a> {
    contact_id: &'a str,
    offer: &'a str,
    channel: &'a str,
    sent_at: String,
    response: &'a str,
}

/// Returns the `id` of each contact, in order (the truncated line's is not
/// among them).
pub(super) fn write_marketing(
    dir: &Path,
    contacts: &[MarketingContact],
    counts: &mut BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ids: Vec<String> = (0..contacts.len())
        .map(|i| format!("M-{}", 50_001 + i))
        .collect();
    // An export cut short mid-line (a full disk, a killed job).
    let truncated = format!(
        "{{\"id\":\"M-{}\",\"name\":\"Rosie Pe",
        50_001 + contacts.len()
    );
    let truncated_at = contacts.len() / 2;
    let mut out = String::new();
    let mut written = 0;
    for (i, (c, id)) in contacts.iter().zip(&ids).enumerate() {
        if i == truncated_at {
            out.push_str(&truncated);
            out.push('\n');
            written += 1;
        }
        out.push_str(&serde_json::to_string(&ContactJson {
            id,
            name: &c.name,
            email: &c.email,
            consent: ConsentJson {
                newsletter: c.newsletter,
                sms: c.sms,
            },
            source: c.source,
            updated_at: fmt_ts(c.updated),
        })?);
        out.push('\n');
        written += 1;
    }
    write_file(&dir.join("contacts.jsonl"), out.as_bytes())?;
    counts.insert("marketing/contacts.jsonl".into(), written);

    let mut offers: Vec<(&str, &Offer)> = contacts
        .iter()
        .zip(&ids)
        .flat_map(|(c, id)| c.offers.iter().map(move |o| (id.as_str(), o)))
        .collect();
    offers.sort_by(|a, b| (a.1.sent, a.0).cmp(&(b.1.sent, b.0)));
    let mut out = String::new();
    for (id, o) in &offers {
        out.push_str(&serde_json::to_string(&OfferJson {
            contact_id: id,
            offer: o.offer,
            channel: o.channel,
            sent_at: fmt_ts(o.sent),
            response: o.response,
        })?);
        out.push('\n');
    }
    write_file(&dir.join("offers.jsonl"), out.as_bytes())?;
    counts.insert("marketing/offers.jsonl".into(), offers.len());
    Ok(ids)
}

/// Returns the `card_no` of each member, in order (the file is in card order).
pub(super) fn write_loyalty(
    dir: &Path,
    members: &[Member],
    counts: &mut BTreeMap<String, usize>,
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut next = 101;
    let cards: Vec<String> = members
        .iter()
        .map(|m| {
            let no = if m.showcase {
                SHOWCASE_CARD
            } else {
                if next == SHOWCASE_CARD {
                    next += 1;
                }
                next += 1;
                next - 1
            };
            format!("FL-{no:06}")
        })
        .collect();
    let mut numbered: Vec<(&String, &Member)> = cards.iter().zip(members).collect();
    numbered.sort_by(|a, b| a.0.cmp(b.0));

    let mut w = csv_writer();
    w.write_record([
        "card_no",
        "name",
        "email",
        "phone",
        "tier",
        "points",
        "joined_at",
        "updated_at",
    ])?;
    for (card, m) in &numbered {
        w.write_record([
            card.as_str(),
            m.name.as_str(),
            m.email.as_deref().unwrap_or(""),
            m.phone.as_deref().unwrap_or(""),
            m.tier,
            m.points.to_string().as_str(),
            fmt_day(m.joined).as_str(),
            fmt_ts(m.updated).as_str(),
        ])?;
    }
    write_file(&dir.join("members.csv"), &w.into_inner()?)?;
    counts.insert("loyalty/members.csv".into(), numbered.len());

    let mut w = csv_writer();
    w.write_record(["card_no", "benefit", "valid_from", "valid_until"])?;
    let mut n = 0;
    for (card, m) in &numbered {
        for e in &m.entitlements {
            w.write_record([
                card.as_str(),
                e.benefit,
                fmt_day(e.from).as_str(),
                fmt_day(e.until).as_str(),
            ])?;
            n += 1;
        }
    }
    write_file(&dir.join("entitlements.csv"), &w.into_inner()?)?;
    counts.insert("loyalty/entitlements.csv".into(), n);
    Ok(cards)
}

/// Writes the answer key `truth.csv` (`source,key,entity`). kith never reads
/// it: it says who each record really belongs to, to measure linking against.
pub(super) fn write_truth(path: &Path, answers: &[Answer]) -> Result<()> {
    let mut w = csv_writer();
    w.write_record(["source", "key", "entity"])?;
    for a in answers {
        w.write_record([a.source, a.key.as_str(), a.entity.to_string().as_str()])?;
    }
    write_file(path, &w.into_inner()?)
}
