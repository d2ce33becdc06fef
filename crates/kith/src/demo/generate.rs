//! The demo business: Fernleaf, a UK garden-supplies shop with a subscription
//! box service, whose customer data lives in five systems that have never
//! been reconciled — which is exactly what kith is for.
//!
//! | source      | what it is                     | format                  | verified |
//! |-------------|--------------------------------|-------------------------|----------|
//! | `billing`   | subscriptions and invoices     | SQLite `billing.db`     | yes      |
//! | `support`   | help desk contacts and tickets | SQLite `support.db`     | no       |
//! | `shop`      | web shop customers and orders  | CSV in `shop/`          | no       |
//! | `marketing` | newsletter contacts and offers | JSON lines `marketing/` | no       |
//! | `loyalty`   | loyalty cards and benefits     | CSV in `loyalty/`       | yes      |
//!
//! Every row comes from a ground-truth population (`people` persons plus ~5%
//! landscaping firms on trade accounts), so a test can tell whether kith
//! linked the right records: `truth.csv` is that answer key, one line
//! `source,key,entity` per good source record (see [`truth`](super::truth)). The noise is deliberate; each item is something
//! real customer data does and kith must cope with:
//!
//! - **Typos** in given and family names (a transposed, dropped or doubled
//!   letter) in ~4% of the records outside billing, ~2% in billing.
//! - **Nicknames**: ~60% of people with a formal name (William, Margaret,
//!   Robert, Elizabeth, Katherine, James, …) have a short form (Bill, Peggy,
//!   Bob, Liz, Kate, Jim, …) they use in some sources; billing keeps the
//!   formal name. Support writes ~20% of names as "Family, Given"; marketing
//!   forms sometimes hold a given name only, or all lower case.
//! - **E-mail case**: shop, marketing and loyalty write some addresses as
//!   `Ann.Lee@Example.com` or in capitals. (Support keeps e-mails as typed in
//!   lower case, because its tickets join contacts by e-mail text.)
//! - **Changed e-mail**: ~10% of people use an old address in the shop or at
//!   the help desk; their phone number is the same, so the phone links them.
//! - **Phone formats**: `07700 900123`, `+44 7700 900123`, `(07700) 900-123`,
//!   `0044 7700 900123`, `07700900123`, `+447700900123`. Numbers are in the
//!   Ofcom drama range 07700 9xxxxx and unique per person.
//! - **Moved house**: ~8% of billing customers moved; billing has the new
//!   address with a newer `updated_at`, the shop still has the old one.
//! - **Missing fields**: phones missing in 6–15% of records depending on the
//!   source (never where the phone is the only link), dates of birth missing
//!   for ~35% of billing customers, a few loyalty cards without e-mail.
//! - **Households**: ~10% of people share street, postcode and family name
//!   with another person, each with their own e-mail and phone.
//! - **Namesakes**: names are drawn from finite tables, so different people
//!   share names (two Jane Smiths are not one person).
//! - **Prospects**: ~15% of people appear only in marketing (never bought).
//! - **Broken rows**: `shop/customers.csv` holds one row with the wrong number
//!   of fields and one with Latin-1 bytes that are not UTF-8, and
//!   `marketing/contacts.jsonl` one truncated line; kith should quarantine them.
//!
//! Person #0 is the showcase, with a hand-written story (see `showcase_rows`).
//! Generation is deterministic: a seeded RNG and a fixed "now" (2026-11-01
//! 09:00 UTC), so the same seed writes byte-identical CSV and JSON files.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Months, NaiveDate, TimeDelta, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use super::names::{
    CAMPAIGNS, FAMILY, GIVEN, HOUSE_NAMES, ORG_SUFFIXES, ORG_WORDS, POSTCODE_LETTERS, PRODUCTS,
    SHOP_ITEMS, STREET_NAMES, STREET_SUFFIXES, TICKET_SUBJECTS, TOWNS, TRADE_PRODUCTS,
    nicknames_of,
};
use super::write::{
    write_billing, write_loyalty, write_marketing, write_shop, write_support, write_truth,
};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Persons in the population (organisations come on top, ~5%).
    pub people: usize,
    pub seed: u64,
    /// Base URL of the loyalty platform's API (the demo serves it; see `loyalty_api`).
    pub loyalty_url: String,
}

/// Where `kith demo` serves the loyalty API unless told otherwise.
pub const DEFAULT_LOYALTY_LISTEN: &str = "127.0.0.1:8791";

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            people: 3000,
            seed: 7,
            loyalty_url: format!("http://{DEFAULT_LOYALTY_LISTEN}/v1"),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The `kith.toml` mapping the five sources.
    pub config_path: PathBuf,
    /// The showcase person's billing (verified) e-mail: a good first lookup.
    pub showcase_email: String,
    pub showcase_name: String,
    /// Rows written per table (`billing.db:invoices`) or file
    /// (`shop/orders.csv`), counting the deliberately broken rows.
    pub counts: BTreeMap<String, usize>,
    /// `truth.csv`: which real person or organisation each good source
    /// record belongs to. kith never reads this file; it is the answer key
    /// for measuring linking (see [`truth::score`](super::truth::score)).
    pub truth_path: PathBuf,
}

const SHOWCASE_GIVEN: &str = "Margaret";
const SHOWCASE_FAMILY: &str = "Ellison";
const SHOWCASE_EMAIL: &str = "margaret.ellison@example.com";
/// The showcase's loyalty card; other cards are numbered around it.
pub(super) const SHOWCASE_CARD: u32 = 123;

/// E-mails of the broken shop rows, kept out of the population so a
/// quarantined row never looks like a real person's.
pub(super) const BROKEN_ROW_EMAILS: &[&str] =
    &["tom.baker@example.net", "jose.ferreira@example.org"];

pub(super) type Ts = DateTime<Utc>;

/// The fixed "now" of the demo world, so output does not depend on the clock.
fn now() -> Ts {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

/// When Fernleaf started trading: nobody is known before this.
fn opened() -> Ts {
    Utc.with_ymd_and_hms(2019, 3, 1, 9, 0, 0).unwrap()
}

fn ts(s: &str) -> Ts {
    s.parse().expect("a valid literal timestamp")
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("a valid literal date")
}

pub(super) fn fmt_ts(t: Ts) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(super) fn fmt_day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(super) fn fmt_pence(p: i64) -> String {
    format!("{}.{:02}", p / 100, p % 100)
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

/// A uniformly random moment in `[a, b)`, or `a` when the range is empty.
fn between(rng: &mut StdRng, a: Ts, b: Ts) -> Ts {
    let secs = (b - a).num_seconds();
    if secs <= 0 {
        a
    } else {
        a + TimeDelta::seconds(rng.random_range(0..secs))
    }
}

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    *xs.choose(rng).expect("tables are not empty")
}

fn weighted<T: Copy>(rng: &mut StdRng, xs: &[(T, u32)]) -> T {
    let total: u32 = xs.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (x, w) in xs {
        if r < *w {
            return *x;
        }
        r -= w;
    }
    unreachable!("r < total")
}

// ---------------------------------------------------------------------------
// The ground truth
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Address {
    pub(super) street: String,
    pub(super) city: &'static str,
    pub(super) postcode: String,
}

/// The real person or organisation behind a source row: the answer key's
/// `entity` column (`person-0` is the showcase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Entity {
    Person(usize),
    Org(usize),
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Person(k) => write!(f, "person-{k}"),
            Entity::Org(j) => write!(f, "org-{j}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Support,
    Shop,
}

#[derive(Debug, Clone, Copy, Default)]
struct Presence {
    billing: bool,
    support: bool,
    shop: bool,
    marketing: bool,
    loyalty: bool,
}

#[derive(Debug, Clone)]
struct Person {
    entity: Entity,
    given: &'static str,
    /// The short form this person goes by, if any; used in some sources.
    nick: Option<&'static str>,
    family: &'static str,
    dob: Option<NaiveDate>,
    email: String,
    /// An address they used before; appears in the source `old_email_in`.
    old_email: Option<String>,
    old_email_in: Option<Src>,
    /// The six digits after 07700.
    phone: u32,
    home: Address,
    /// Where they lived before moving (the shop still has it).
    old_home: Option<Address>,
    moved_at: Option<Ts>,
    /// When Fernleaf first heard of them.
    since: Ts,
    presence: Presence,
    /// A former billing customer.
    cancelled: bool,
}

impl Person {
    /// The phone is their only link when they used an old e-mail somewhere,
    /// so no source may drop it.
    fn keeps_phone(&self) -> bool {
        self.old_email.is_some()
    }

    fn email_in(&self, src: Src) -> &str {
        match (&self.old_email, self.old_email_in) {
            (Some(old), Some(s)) if s == src => old,
            _ => &self.email,
        }
    }
}

#[derive(Debug, Clone)]
struct Org {
    entity: Entity,
    name: String,
    email: String,
    phone: u32,
    home: Address,
    since: Ts,
    active: bool,
}

/// A unique mobile number for the k-th allocation: a stride coprime to
/// 100,000 walks every 07700 9xxxxx number once, starting at 900123 so the
/// showcase gets the most recognisable one. Beyond 100,000 it continues in
/// lower blocks, which no demo needs.
fn phone_number(k: usize) -> u32 {
    let block = (k / 100_000) as u32;
    let within = ((123 + (k % 100_000) as u64 * 7919) % 100_000) as u32;
    (900_000 - block.min(8) * 100_000) + within
}

fn fmt_phone(n: u32, style: u32) -> String {
    let s = format!("{n:06}");
    match style {
        0 => format!("07700 {s}"),
        1 => format!("+44 7700 {s}"),
        2 => format!("(07700) {}-{}", &s[..3], &s[3..]),
        3 => format!("0044 7700 {s}"),
        4 => format!("07700{s}"),
        _ => format!("+447700{s}"),
    }
}

/// Lower-case letters, digits and hyphens of a name, for e-mail local parts.
fn slug(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn make_email(rng: &mut StdRng, given: &str, family: &str, taken: &mut HashSet<String>) -> String {
    let g = slug(given);
    let f = slug(family);
    let domain = weighted(
        rng,
        &[("example.com", 6), ("example.org", 2), ("example.net", 2)],
    );
    let local = match rng.random_range(0..7) {
        0..=2 => format!("{g}.{f}"),
        3 => format!("{}{f}", &g[..1]),
        4 => format!("{g}{f}{}", rng.random_range(10..99)),
        5 => format!("{f}.{g}"),
        _ => format!("{g}_{f}"),
    };
    let mut email = format!("{local}@{domain}");
    let mut n = 2;
    while !taken.insert(email.clone()) {
        email = format!("{local}{n}@{domain}");
        n += 1;
    }
    email
}

fn random_address(rng: &mut StdRng) -> Address {
    let (city, outward) = pick(rng, TOWNS);
    let out = pick(rng, outward);
    let letter = |rng: &mut StdRng| pick(rng, POSTCODE_LETTERS) as char;
    let postcode = format!(
        "{out} {}{}{}",
        rng.random_range(0..10),
        letter(rng),
        letter(rng)
    );
    let street_name = format!("{} {}", pick(rng, STREET_NAMES), pick(rng, STREET_SUFFIXES));
    let number = rng.random_range(1..140);
    let street = match rng.random_range(0..100) {
        0..8 => format!("Flat {}, {number} {street_name}", rng.random_range(1..9)),
        8..11 => format!("{}, {street_name}", pick(rng, HOUSE_NAMES)),
        _ => format!("{number} {street_name}"),
    };
    Address {
        street,
        city,
        postcode,
    }
}

fn showcase_person() -> Person {
    Person {
        entity: Entity::Person(0),
        given: SHOWCASE_GIVEN,
        nick: Some("Peggy"),
        family: SHOWCASE_FAMILY,
        dob: Some(day("1961-04-17")),
        email: SHOWCASE_EMAIL.into(),
        old_email: None,
        old_email_in: None,
        phone: phone_number(0),
        home: Address {
            street: "7 Orchard Rise".into(),
            city: "Harrogate",
            postcode: "HG2 8QT".into(),
        },
        old_home: Some(Address {
            street: "Flat 2, 14 Mill Lane".into(),
            city: "Leeds",
            postcode: "LS6 2AB".into(),
        }),
        moved_at: Some(ts("2026-10-19T12:00:00Z")),
        since: ts("2021-02-27T19:44:12Z"),
        presence: Presence {
            billing: true,
            support: true,
            shop: true,
            marketing: true,
            loyalty: true,
        },
        cancelled: false,
    }
}

/// The ground truth: `people` persons (person #0 is the showcase) and ~5%
/// organisations.
fn population(rng: &mut StdRng, people: usize) -> (Vec<Person>, Vec<Org>) {
    let mut taken: HashSet<String> = BROKEN_ROW_EMAILS.iter().map(|e| e.to_string()).collect();
    taken.insert(SHOWCASE_EMAIL.into());
    let mut persons = Vec::with_capacity(people);
    persons.push(showcase_person());
    // Pairs only, and never with the showcase, whose story is hand-written.
    let mut prev_joined = true;
    for k in 1..people {
        let household = !prev_joined && rng.random_bool(0.053);
        prev_joined = household;
        let (family, home, given) = if household {
            let prev = &persons[k - 1];
            let mut given = pick(rng, GIVEN);
            while given == prev.given {
                given = pick(rng, GIVEN);
            }
            (prev.family, prev.home.clone(), given)
        } else {
            (pick(rng, FAMILY), random_address(rng), pick(rng, GIVEN))
        };
        let nicks = nicknames_of(given);
        let nick = (!nicks.is_empty() && rng.random_bool(0.6)).then(|| pick(rng, nicks));
        let dob = rng.random_bool(0.65).then(|| {
            NaiveDate::from_ymd_opt(1940, 1, 1).unwrap() + days(rng.random_range(0..(64 * 365)))
        });
        let email = make_email(rng, nick.unwrap_or(given), family, &mut taken);
        let since = between(rng, opened(), now() - days(10));

        let mut presence = Presence::default();
        if rng.random_bool(0.15) {
            presence.marketing = true;
        } else {
            presence.billing = rng.random_bool(0.647);
            presence.shop = rng.random_bool(0.38);
            let buyer = presence.billing || presence.shop;
            presence.support = rng.random_bool(if buyer { 0.46 } else { 0.25 });
            presence.loyalty = rng.random_bool(if buyer { 0.35 } else { 0.1 });
            presence.marketing = rng.random_bool(0.41);
            if !(presence.billing || presence.shop || presence.support || presence.loyalty) {
                presence.shop = true;
            }
        }
        let cancelled = presence.billing && rng.random_bool(0.15);

        let (old_home, moved_at) = if presence.billing
            && presence.shop
            && since < now() - days(90)
            && rng.random_bool(0.22)
        {
            let moved_at = between(
                rng,
                (since + days(30)).max(now() - days(730)),
                now() - days(3),
            );
            (Some(random_address(rng)), Some(moved_at))
        } else {
            (None, None)
        };

        // An old e-mail only confuses when a second source has the current one.
        let mut old_in: Vec<Src> = Vec::new();
        if presence.support {
            old_in.push(Src::Support);
        }
        if presence.shop {
            old_in.push(Src::Shop);
        }
        let sources = [
            presence.billing,
            presence.support,
            presence.shop,
            presence.marketing,
            presence.loyalty,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let (old_email, old_email_in) =
            if sources >= 2 && !old_in.is_empty() && rng.random_bool(0.17) {
                let src = pick(rng, &old_in);
                (Some(make_email(rng, given, family, &mut taken)), Some(src))
            } else {
                (None, None)
            };

        persons.push(Person {
            entity: Entity::Person(k),
            given,
            nick,
            family,
            dob,
            email,
            old_email,
            old_email_in,
            phone: phone_number(k),
            home,
            old_home,
            moved_at,
            since,
            presence,
            cancelled,
        });
    }

    let mut org_names: HashSet<String> = HashSet::new();
    let orgs = (0..people.div_ceil(20))
        .map(|j| {
            let mut name = if rng.random_bool(0.3) {
                format!("{} & Sons Landscaping", pick(rng, FAMILY))
            } else {
                format!("{} {}", pick(rng, ORG_WORDS), pick(rng, ORG_SUFFIXES))
            };
            let home = random_address(rng);
            if !org_names.insert(name.clone()) {
                let base = format!("{name} ({})", home.city);
                name = base.clone();
                let mut n = 2;
                while !org_names.insert(name.clone()) {
                    name = format!("{base} {n}");
                    n += 1;
                }
            }
            let mut email = format!("accounts.{}@example.com", slug(&name.replace(' ', "")));
            let mut n = 2;
            while !taken.insert(email.clone()) {
                email = format!("accounts.{}{n}@example.com", slug(&name.replace(' ', "")));
                n += 1;
            }
            Org {
                entity: Entity::Org(j),
                name,
                email,
                phone: phone_number(people + j),
                home,
                since: between(rng, opened(), now() - days(60)),
                active: rng.random_bool(0.9),
            }
        })
        .collect();
    (persons, orgs)
}

// ---------------------------------------------------------------------------
// Noise
// ---------------------------------------------------------------------------

/// A transposed, dropped or doubled letter (never the first).
fn typo(rng: &mut StdRng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() < 4 {
        return s.to_string();
    }
    let i = rng.random_range(1..c.len() - 1);
    match rng.random_range(0..3) {
        0 if c[i] != c[i + 1] => c.swap(i, i + 1),
        0 | 1 => {
            c.remove(i);
        }
        _ => c.insert(i, c[i]),
    }
    c.into_iter().collect()
}

fn maybe_typo(rng: &mut StdRng, s: &str, p: f64) -> String {
    if rng.random_bool(p) {
        typo(rng, s)
    } else {
        s.to_string()
    }
}

/// The given name as this source has it: sometimes the nickname, sometimes misspelt.
fn written_given(rng: &mut StdRng, p: &Person, nick_p: f64, typo_p: f64) -> String {
    let base = match p.nick {
        Some(n) if rng.random_bool(nick_p) => n,
        _ => p.given,
    };
    maybe_typo(rng, base, typo_p)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `ann.lee@example.com` → `Ann.Lee@Example.com`, or all capitals.
fn recased(rng: &mut StdRng, email: &str) -> String {
    if rng.random_bool(0.2) {
        return email.to_uppercase();
    }
    let Some((local, domain)) = email.split_once('@') else {
        return email.to_string();
    };
    let local: Vec<String> = local.split('.').map(capitalise).collect();
    let (first, rest) = domain.split_once('.').unwrap_or((domain, ""));
    format!("{}@{}.{rest}", local.join("."), capitalise(first))
}

fn maybe_recased(rng: &mut StdRng, email: &str, p: f64) -> String {
    if rng.random_bool(p) {
        recased(rng, email)
    } else {
        email.to_string()
    }
}

fn maybe_phone(rng: &mut StdRng, p: &Person, missing: f64, styles: u32) -> Option<String> {
    if !p.keeps_phone() && rng.random_bool(missing) {
        None
    } else {
        let style = rng.random_range(0..styles);
        Some(fmt_phone(p.phone, style))
    }
}

// ---------------------------------------------------------------------------
// Source rows, before ids are handed out
// ---------------------------------------------------------------------------

pub(super) struct BillingCustomer {
    /// Who this row really belongs to (for `truth.csv` only).
    pub(super) entity: Entity,
    pub(super) kind: &'static str,
    pub(super) first_name: Option<String>,
    pub(super) last_name: Option<String>,
    pub(super) company: Option<String>,
    pub(super) email: String,
    pub(super) phone: Option<String>,
    pub(super) address: Address,
    pub(super) date_of_birth: Option<NaiveDate>,
    pub(super) status: &'static str,
    pub(super) plan: &'static str,
    pub(super) updated_at: Ts,
    pub(super) invoices: Vec<Invoice>,
    pub(super) subscriptions: Vec<Subscription>,
}

pub(super) struct Invoice {
    pub(super) issued: NaiveDate,
    pub(super) pence: i64,
    pub(super) status: &'static str,
}

pub(super) struct Subscription {
    pub(super) product: &'static str,
    pub(super) started: NaiveDate,
    pub(super) renews: Option<NaiveDate>,
    pub(super) status: &'static str,
}

pub(super) struct SupportContact {
    /// Who this row really belongs to (for `truth.csv` only).
    pub(super) entity: Entity,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) phone: Option<String>,
    pub(super) updated_at: Ts,
    pub(super) tickets: Vec<Ticket>,
}

pub(super) struct Ticket {
    pub(super) subject: &'static str,
    pub(super) status: &'static str,
    pub(super) priority: &'static str,
    pub(super) channel: &'static str,
    pub(super) opened: Ts,
    pub(super) closed: Option<Ts>,
}

pub(super) struct ShopCustomer {
    /// Who this row really belongs to (for `truth.csv` only).
    pub(super) entity: Entity,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) email: String,
    pub(super) phone: Option<String>,
    pub(super) address: String,
    pub(super) city: String,
    pub(super) postcode: String,
    pub(super) created: Ts,
    pub(super) updated: Ts,
    pub(super) orders: Vec<Order>,
}

pub(super) struct Order {
    pub(super) placed: Ts,
    pub(super) pence: i64,
    pub(super) items: String,
    pub(super) status: &'static str,
}

pub(super) struct MarketingContact {
    /// Who this row really belongs to (for `truth.csv` only).
    pub(super) entity: Entity,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) newsletter: bool,
    pub(super) sms: bool,
    pub(super) source: &'static str,
    pub(super) updated: Ts,
    pub(super) offers: Vec<Offer>,
}

pub(super) struct Offer {
    pub(super) offer: &'static str,
    pub(super) channel: &'static str,
    pub(super) sent: Ts,
    pub(super) response: &'static str,
}

pub(super) struct Member {
    /// Who this row really belongs to (for `truth.csv` only).
    pub(super) entity: Entity,
    pub(super) showcase: bool,
    pub(super) name: String,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) tier: &'static str,
    pub(super) points: i64,
    pub(super) joined: NaiveDate,
    pub(super) updated: Ts,
    pub(super) entitlements: Vec<Entitlement>,
}

pub(super) struct Entitlement {
    pub(super) benefit: &'static str,
    pub(super) from: NaiveDate,
    pub(super) until: NaiveDate,
}

#[derive(Default)]
struct Rows {
    billing: Vec<BillingCustomer>,
    support: Vec<SupportContact>,
    shop: Vec<ShopCustomer>,
    marketing: Vec<MarketingContact>,
    loyalty: Vec<Member>,
}

/// Months between renewals of a subscription product.
fn period_months(product: &str) -> u32 {
    match product {
        "Seasonal seed box" => 3,
        "Bulb club" | "Tool care plan" | "Trade seed supply" => 12,
        _ => 1,
    }
}

/// The first renewal date after `after`.
fn next_renewal(started: NaiveDate, months: u32, after: NaiveDate) -> NaiveDate {
    let step = Months::new(months);
    let mut d = started + step;
    while d <= after {
        d = d + step;
    }
    d
}

fn invoices(
    rng: &mut StdRng,
    start: Ts,
    end: Ts,
    count: usize,
    pence: std::ops::Range<i64>,
    cancelled: bool,
    late_payer: f64,
) -> Vec<Invoice> {
    let mut dates: Vec<NaiveDate> = (0..count)
        .map(|_| between(rng, start, end).date_naive())
        .collect();
    dates.sort();
    let today = now().date_naive();
    let last = dates.len().saturating_sub(1);
    dates
        .into_iter()
        .enumerate()
        .map(|(i, issued)| {
            let recent = (today - issued).num_days() < 30;
            let status = if cancelled && i == last && rng.random_bool(0.25) {
                "overdue"
            } else if recent && !cancelled && rng.random_bool(0.7) {
                "due"
            } else if rng.random_bool(late_payer) {
                "overdue"
            } else {
                "paid"
            };
            Invoice {
                issued,
                pence: rng.random_range(pence.clone()),
                status,
            }
        })
        .collect()
}

fn billing_row(rng: &mut StdRng, p: &Person) -> BillingCustomer {
    let start = (p.since + days(rng.random_range(0..60))).min(now() - days(2));
    let end = if p.cancelled {
        between(
            rng,
            (start + days(60)).min(now() - days(8)),
            now() - days(7),
        )
    } else {
        now()
    };
    let updated_at = match p.moved_at {
        Some(moved) => between(rng, moved, now()),
        None if p.cancelled => end,
        None => between(rng, start, now()),
    };
    let months = ((end - start).num_days() / 30).max(0) as usize;
    let count = rng.random_range(1..=8).min(months + 1);
    let invoices = invoices(rng, start, end, count, 850..12_000, p.cancelled, 0.03);

    let today = now().date_naive();
    let subscriptions = if p.cancelled {
        let started = between(rng, start, end).date_naive();
        vec![Subscription {
            product: pick(rng, PRODUCTS),
            started,
            renews: None,
            status: "cancelled",
        }]
    } else {
        let n = weighted(rng, &[(0usize, 35), (1, 45), (2, 20)]);
        let mut products: Vec<&'static str> = PRODUCTS.to_vec();
        products.shuffle(rng);
        products
            .into_iter()
            .take(n)
            .map(|product| {
                let started = between(rng, start, now() - days(1)).date_naive();
                let trial = (today - started).num_days() < 30 && rng.random_bool(0.6);
                let (renews, status) = if trial {
                    (started + days(30), "trial")
                } else {
                    (
                        next_renewal(started, period_months(product), today),
                        "active",
                    )
                };
                Subscription {
                    product,
                    started,
                    renews: Some(renews),
                    status,
                }
            })
            .collect()
    };

    BillingCustomer {
        entity: p.entity,
        kind: "person",
        first_name: Some(maybe_typo(rng, p.given, 0.02)),
        last_name: Some(maybe_typo(rng, p.family, 0.02)),
        company: None,
        email: p.email.clone(),
        phone: maybe_phone(rng, p, 0.06, 2),
        address: p.home.clone(),
        date_of_birth: p.dob,
        status: if p.cancelled { "cancelled" } else { "active" },
        plan: pick(rng, &["Standard", "Seasonal", "Pay as you go"]),
        updated_at,
        invoices,
        subscriptions,
    }
}

fn org_row(rng: &mut StdRng, o: &Org) -> BillingCustomer {
    let end = if o.active {
        now()
    } else {
        between(
            rng,
            (o.since + days(90)).min(now() - days(31)),
            now() - days(30),
        )
    };
    let updated_at = if o.active {
        between(rng, o.since, now())
    } else {
        end
    };
    let count = rng.random_range(4..=16);
    let invoices = invoices(rng, o.since, end, count, 15_000..240_000, !o.active, 0.08);
    let today = now().date_naive();
    let n = rng.random_range(1..=2);
    let mut products: Vec<&'static str> = TRADE_PRODUCTS.to_vec();
    products.shuffle(rng);
    let subscriptions = products
        .into_iter()
        .take(n)
        .map(|product| {
            let started = between(rng, o.since, end - days(1)).date_naive();
            let (renews, status) = if o.active {
                (
                    Some(next_renewal(started, period_months(product), today)),
                    "active",
                )
            } else {
                (None, "cancelled")
            };
            Subscription {
                product,
                started,
                renews,
                status,
            }
        })
        .collect();
    BillingCustomer {
        entity: o.entity,
        kind: "organisation",
        first_name: None,
        last_name: None,
        company: Some(o.name.clone()),
        email: o.email.clone(),
        phone: Some(fmt_phone(o.phone, rng.random_range(0..2))),
        address: o.home.clone(),
        date_of_birth: None,
        status: if o.active { "active" } else { "cancelled" },
        plan: "Trade",
        updated_at,
        invoices,
        subscriptions,
    }
}

fn support_row(rng: &mut StdRng, p: &Person) -> SupportContact {
    let given = written_given(rng, p, 0.3, 0.04);
    let family = maybe_typo(rng, p.family, 0.04);
    let name = if rng.random_bool(0.2) {
        format!("{family}, {given}")
    } else {
        format!("{given} {family}")
    };
    let n = weighted(rng, &[(1usize, 55), (2, 25), (3, 12), (4, 8)]);
    let mut tickets: Vec<Ticket> = (0..n)
        .map(|_| {
            let recent = rng.random_bool(0.12);
            let opened = if recent {
                between(
                    rng,
                    p.since.max(now() - days(21)),
                    now() - TimeDelta::minutes(30),
                )
            } else {
                between(rng, p.since, now() - TimeDelta::minutes(30))
            };
            let fresh = now() - opened < days(21);
            let mut status = if fresh {
                weighted(rng, &[("open", 35), ("pending", 25), ("solved", 40)])
            } else {
                weighted(rng, &[("closed", 85), ("solved", 13), ("pending", 2)])
            };
            let mut closed = None;
            if matches!(status, "solved" | "closed") {
                let longest = (now() - opened).num_minutes().min(7 * 24 * 60);
                if longest > 45 {
                    closed = Some(opened + TimeDelta::minutes(rng.random_range(45..longest)));
                } else {
                    // Too recent to have been dealt with yet.
                    status = "open";
                }
            }
            Ticket {
                subject: pick(rng, TICKET_SUBJECTS),
                status,
                priority: weighted(
                    rng,
                    &[("low", 25), ("normal", 55), ("high", 16), ("urgent", 4)],
                ),
                channel: weighted(rng, &[("email", 55), ("phone", 25), ("chat", 20)]),
                opened,
                closed,
            }
        })
        .collect();
    tickets.sort_by_key(|t| t.opened);
    let updated_at = tickets
        .iter()
        .map(|t| t.closed.unwrap_or(t.opened))
        .max()
        .unwrap_or(p.since);
    SupportContact {
        entity: p.entity,
        name,
        email: p.email_in(Src::Support).to_string(),
        phone: maybe_phone(rng, p, 0.15, 6),
        updated_at,
        tickets,
    }
}

fn order_items(lines: &[(&str, i64)]) -> (String, i64) {
    let subtotal: i64 = lines
        .iter()
        .map(|(item, qty)| {
            let price = SHOP_ITEMS
                .iter()
                .find(|(name, _)| name == item)
                .map(|(_, p)| *p)
                .expect("items come from the catalogue");
            price * qty
        })
        .sum();
    let delivery = if subtotal < 4000 { 395 } else { 0 };
    let items = lines
        .iter()
        .map(|(item, qty)| format!("{item} x{qty}"))
        .collect::<Vec<_>>()
        .join("; ");
    (items, subtotal + delivery)
}

fn shop_row(rng: &mut StdRng, p: &Person, newline_next_flat: &mut bool) -> ShopCustomer {
    let lower = rng.random_bool(0.03);
    let mut first_name = written_given(rng, p, 0.35, 0.04);
    let mut last_name = maybe_typo(rng, p.family, 0.04);
    if lower {
        first_name = first_name.to_lowercase();
        last_name = last_name.to_lowercase();
    }
    let address = p.old_home.as_ref().unwrap_or(&p.home);
    // A web form's address box is a textarea: some people press Enter.
    let street =
        if address.street.starts_with("Flat ") && (*newline_next_flat || rng.random_bool(0.08)) {
            *newline_next_flat = false;
            address.street.replacen(", ", "\n", 1)
        } else {
            address.street.clone()
        };
    let mut created = (p.since + days(rng.random_range(0..30))).min(now() - days(1));
    if let Some(moved) = p.moved_at {
        // The shop record predates the move, so billing's is the newer.
        created = created.min(moved - days(2));
    }
    let updated = match p.moved_at {
        Some(moved) => between(rng, created, moved - days(1)),
        None => between(rng, created, now()),
    };
    let n = 1 + (rng.random::<f64>().powi(2) * 14.0) as usize;
    let mut orders: Vec<Order> = (0..n)
        .map(|_| {
            let placed = between(rng, created, now());
            let k = weighted(rng, &[(1usize, 50), (2, 30), (3, 15), (4, 5)]);
            let mut catalogue: Vec<&(&str, i64)> = SHOP_ITEMS.iter().collect();
            catalogue.shuffle(rng);
            let lines: Vec<(&str, i64)> = catalogue
                .into_iter()
                .take(k)
                .map(|(name, _)| (*name, weighted(rng, &[(1i64, 75), (2, 18), (3, 7)])))
                .collect();
            let (items, pence) = order_items(&lines);
            let age = now() - placed;
            let status = if age < days(2) {
                "processing"
            } else if age < days(6) {
                "shipped"
            } else if rng.random_bool(0.04) {
                "returned"
            } else {
                "delivered"
            };
            Order {
                placed,
                pence,
                items,
                status,
            }
        })
        .collect();
    orders.sort_by_key(|o| o.placed);
    ShopCustomer {
        entity: p.entity,
        first_name,
        last_name,
        email: maybe_recased(rng, p.email_in(Src::Shop), 0.1),
        phone: maybe_phone(rng, p, 0.12, 6),
        address: street,
        city: address.city.to_string(),
        postcode: address.postcode.clone(),
        created,
        updated,
        orders,
    }
}

fn campaign_sent(rng: &mut StdRng, date: &str) -> Ts {
    day(date).and_hms_opt(7, 30, 0).unwrap().and_utc()
        + TimeDelta::minutes(rng.random_range(0..120))
}

fn marketing_row(rng: &mut StdRng, p: &Person) -> MarketingContact {
    let given = written_given(rng, p, 0.35, 0.04);
    let family = maybe_typo(rng, p.family, 0.04);
    let mut name = if rng.random_bool(0.08) {
        given
    } else {
        format!("{given} {family}")
    };
    if rng.random_bool(0.05) {
        name = name.to_lowercase();
    }
    let only_here =
        !(p.presence.billing || p.presence.shop || p.presence.support || p.presence.loyalty);
    let signed_up = if only_here {
        p.since
    } else {
        between(rng, p.since, now() - days(1))
    };
    let mut newsletter = rng.random_bool(0.85);
    let mut sms = rng.random_bool(0.3);
    let mut updated = signed_up;
    let mut offers = Vec::new();
    for (offer, date) in CAMPAIGNS {
        let sent = campaign_sent(rng, date);
        if sent < signed_up || !rng.random_bool(0.55) {
            continue;
        }
        let channel = if sms && (!newsletter || rng.random_bool(0.3)) {
            "sms"
        } else if newsletter {
            "email"
        } else {
            continue;
        };
        let response = weighted(
            rng,
            &[
                ("opened", 30),
                ("clicked", 15),
                ("redeemed", 8),
                ("ignored", 42),
                ("unsubscribed", 4),
            ],
        );
        if response == "unsubscribed" {
            match channel {
                "sms" => sms = false,
                _ => newsletter = false,
            }
            updated = sent + TimeDelta::minutes(rng.random_range(5..600));
        }
        offers.push(Offer {
            offer,
            channel,
            sent,
            response,
        });
    }
    MarketingContact {
        entity: p.entity,
        name,
        email: maybe_recased(rng, &p.email, 0.2),
        newsletter,
        sms,
        source: weighted(
            rng,
            &[("newsletter form", 60), ("event", 20), ("competition", 20)],
        ),
        updated,
        offers,
    }
}

fn loyalty_row(rng: &mut StdRng, p: &Person) -> Member {
    let name = format!(
        "{} {}",
        written_given(rng, p, 0.4, 0.04),
        maybe_typo(rng, p.family, 0.04)
    );
    let no_email = rng.random_bool(0.05);
    let email = (!no_email).then(|| maybe_recased(rng, &p.email, 0.1));
    let phone = if no_email {
        Some(fmt_phone(p.phone, rng.random_range(0..6)))
    } else {
        maybe_phone(rng, p, 0.08, 6)
    };
    let joined_at = between(rng, p.since, now() - days(1));
    let joined = joined_at.date_naive();
    let points = (rng.random::<f64>().powi(2) * 4000.0) as i64;
    let tier = match points {
        0..500 => "seedling",
        500..2000 => "sprout",
        _ => "evergreen",
    };
    let yearly = |rng: &mut StdRng, benefit| {
        let from = between(rng, joined_at.max(now() - days(364)), now()).date_naive();
        Entitlement {
            benefit,
            from,
            until: from + days(365),
        }
    };
    let mut entitlements = Vec::new();
    match tier {
        "evergreen" => {
            entitlements.push(yearly(rng, "free delivery"));
            entitlements.push(yearly(rng, "10% off tools"));
            entitlements.push(Entitlement {
                benefit: "early access",
                from: day("2026-09-01"),
                until: day("2026-12-31"),
            });
        }
        "sprout" => {
            entitlements.push(yearly(rng, "free delivery"));
            if rng.random_bool(0.4) {
                entitlements.push(yearly(rng, "10% off tools"));
            }
        }
        _ => {
            // New members get a welcome quarter of free delivery.
            if rng.random_bool(0.3) {
                entitlements.push(Entitlement {
                    benefit: "free delivery",
                    from: joined,
                    until: joined + days(90),
                });
            }
        }
    }
    Member {
        entity: p.entity,
        showcase: false,
        name,
        email,
        phone,
        tier,
        points,
        joined,
        // Points move with every purchase, so most cards changed this year.
        updated: between(rng, joined_at.max(now() - days(365)), now()),
        entitlements,
    }
}

/// Person #0's records, written by hand so the demo has a story to tell:
///
/// Margaret Ellison has been a subscriber since 2021. In October 2026 she
/// moved from a flat in Leeds to Harrogate and told billing (new address,
/// updated 21 Oct), but the web shop still has the old address from 2024 — so
/// the order she placed on 27 Oct was shipped to Leeds, and on 30 Oct she
/// phoned support (open, high priority) while another order is still
/// `processing`. Her seed box renews on 14 Dec (invoice due) and her Bulb club
/// trial, started after she redeemed a marketing offer, ends on 11 Nov.
/// Marketing knows her as "Peggy Ellison" (signed up at a flower show),
/// support files her as "Ellison, Margaret", the shop has her e-mail as
/// `Margaret.Ellison@Example.com`, and her evergreen loyalty card carries
/// three benefits.
fn showcase_rows(p: &Person, rows: &mut Rows) {
    let inv = |issued: &str, pence, status| Invoice {
        issued: day(issued),
        pence,
        status,
    };
    let sub = |product, started: &str, renews: &str, status| Subscription {
        product,
        started: day(started),
        renews: Some(day(renews)),
        status,
    };
    rows.billing.push(BillingCustomer {
        entity: p.entity,
        kind: "person",
        first_name: Some(p.given.into()),
        last_name: Some(p.family.into()),
        company: None,
        email: p.email.clone(),
        phone: Some(fmt_phone(p.phone, 0)),
        address: p.home.clone(),
        date_of_birth: p.dob,
        status: "active",
        plan: "Seasonal",
        updated_at: ts("2026-10-21T16:42:05Z"),
        invoices: vec![
            inv("2025-12-14", 3400, "paid"),
            inv("2026-03-14", 3400, "paid"),
            inv("2026-06-14", 3400, "paid"),
            inv("2026-09-12", 4900, "paid"),
            inv("2026-09-14", 3400, "paid"),
            inv("2026-10-31", 3400, "due"),
        ],
        subscriptions: vec![
            sub("Seasonal seed box", "2021-03-14", "2026-12-14", "active"),
            sub("Tool care plan", "2026-09-12", "2027-09-12", "active"),
            sub("Bulb club", "2026-10-12", "2026-11-11", "trial"),
        ],
    });

    rows.support.push(SupportContact {
        entity: p.entity,
        name: format!("{}, {}", p.family, p.given),
        email: p.email.clone(),
        phone: Some(fmt_phone(p.phone, 4)),
        updated_at: ts("2026-10-30T11:05:40Z"),
        tickets: vec![
            Ticket {
                subject: "Refund for returned item",
                status: "closed",
                priority: "normal",
                channel: "email",
                opened: ts("2026-09-29T10:12:31Z"),
                closed: Some(ts("2026-10-02T15:30:02Z")),
            },
            Ticket {
                subject: "Order sent to my old address",
                status: "open",
                priority: "high",
                channel: "phone",
                opened: ts("2026-10-30T11:05:40Z"),
                closed: None,
            },
        ],
    });

    let old = p.old_home.as_ref().expect("the showcase moved");
    let order = |placed: &str, lines: &[(&str, i64)], status| {
        let (items, pence) = order_items(lines);
        Order {
            placed: ts(placed),
            pence,
            items,
            status,
        }
    };
    rows.shop.push(ShopCustomer {
        entity: p.entity,
        first_name: p.given.into(),
        last_name: p.family.into(),
        email: "Margaret.Ellison@Example.com".into(),
        phone: Some(fmt_phone(p.phone, 1)),
        address: old.street.replacen(", ", "\n", 1),
        city: old.city.into(),
        postcode: old.postcode.clone(),
        created: p.since,
        updated: ts("2024-06-03T08:15:51Z"),
        orders: vec![
            order(
                "2024-05-11T10:02:33Z",
                &[
                    ("Tomato seeds 'Gardener's Delight'", 2),
                    ("Herb pots (set of 3)", 1),
                ],
                "delivered",
            ),
            order(
                "2025-04-02T21:17:09Z",
                &[("Peat-free compost 40L", 2), ("Stainless trowel", 1)],
                "delivered",
            ),
            order(
                "2026-03-20T13:40:00Z",
                &[("Wildflower seed mix", 1), ("Bee hotel", 1)],
                "delivered",
            ),
            order(
                "2026-09-26T09:31:47Z",
                &[("Secateurs (bypass)", 1)],
                "returned",
            ),
            order(
                "2026-10-27T18:22:05Z",
                &[
                    ("Daffodil bulbs (25)", 2),
                    ("Gardening gloves, leather (M)", 1),
                ],
                "shipped",
            ),
            order(
                "2026-10-31T20:48:16Z",
                &[("Raised bed kit", 1), ("Peat-free compost 40L", 3)],
                "processing",
            ),
        ],
    });

    let offer = |offer, date: &str, hm: &str, channel, response| Offer {
        offer,
        channel,
        sent: ts(&format!("{date}T{hm}:00Z")),
        response,
    };
    rows.marketing.push(MarketingContact {
        entity: p.entity,
        name: format!("{} {}", p.nick.unwrap_or(p.given), p.family),
        email: p.email.clone(),
        newsletter: true,
        sms: true,
        source: "event",
        updated: ts("2024-04-26T14:03:27Z"),
        offers: vec![
            offer(
                "Free delivery weekend",
                "2024-05-17",
                "07:41",
                "email",
                "ignored",
            ),
            offer("Spring 20% off", "2025-03-07", "08:02", "email", "opened"),
            offer("Spring 20% off", "2026-03-10", "07:55", "email", "clicked"),
            offer(
                "Bulb club: first box free",
                "2026-09-30",
                "08:12",
                "email",
                "redeemed",
            ),
            offer("Autumn bulb sale", "2026-10-15", "09:20", "sms", "opened"),
            offer(
                "Loyalty double points weekend",
                "2026-10-28",
                "07:48",
                "email",
                "ignored",
            ),
        ],
    });

    rows.loyalty.push(Member {
        entity: p.entity,
        showcase: true,
        name: format!("{} {}", p.given, p.family),
        email: Some(p.email.clone()),
        phone: Some(fmt_phone(p.phone, 0)),
        tier: "evergreen",
        points: 2480,
        joined: day("2022-04-09"),
        updated: ts("2026-10-31T20:48:16Z"),
        entitlements: vec![
            Entitlement {
                benefit: "free delivery",
                from: day("2026-01-01"),
                until: day("2026-12-31"),
            },
            Entitlement {
                benefit: "10% off tools",
                from: day("2026-04-01"),
                until: day("2027-03-31"),
            },
            Entitlement {
                benefit: "early access",
                from: day("2026-09-01"),
                until: day("2026-12-31"),
            },
        ],
    });
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Generates the Fernleaf demo into `dir` (created if missing; demo files in
/// it are replaced) and writes `kith.toml` mapping it.
pub async fn generate(dir: &Path, opts: &GenerateOptions) -> Result<Generated> {
    if opts.people == 0 {
        bail!("the demo needs at least one person (the showcase)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let (people, orgs) = population(&mut rng, opts.people);

    let mut rows = Rows::default();
    showcase_rows(&people[0], &mut rows);
    // Make sure at least one multi-line address exists beyond the showcase's.
    let mut newline_next_flat = true;
    for p in &people[1..] {
        if p.presence.billing {
            rows.billing.push(billing_row(&mut rng, p));
        }
        if p.presence.support {
            rows.support.push(support_row(&mut rng, p));
        }
        if p.presence.shop {
            rows.shop
                .push(shop_row(&mut rng, p, &mut newline_next_flat));
        }
        if p.presence.marketing {
            rows.marketing.push(marketing_row(&mut rng, p));
        }
        if p.presence.loyalty {
            rows.loyalty.push(loyalty_row(&mut rng, p));
        }
    }
    for o in &orgs {
        rows.billing.push(org_row(&mut rng, o));
    }
    // Sources number their records in their own order, unrelated to each other's.
    rows.billing.shuffle(&mut rng);
    rows.support.shuffle(&mut rng);
    rows.shop.shuffle(&mut rng);
    rows.marketing.shuffle(&mut rng);
    rows.loyalty.shuffle(&mut rng);

    // Each writer hands out the record keys and returns them in row order,
    // so the answer key names exactly the keys kith will read.
    let mut counts = BTreeMap::new();
    let mut truth = Vec::new();
    let keys = write_billing(&dir.join("billing.db"), &rows.billing, &mut counts).await?;
    truth.extend(answers("billing", &rows.billing, keys, |r| r.entity));
    let keys = write_support(&dir.join("support.db"), &rows.support, &mut counts).await?;
    truth.extend(answers("support", &rows.support, keys, |r| r.entity));
    let keys = write_shop(&dir.join("shop"), &rows.shop, &mut counts)?;
    truth.extend(answers("shop", &rows.shop, keys, |r| r.entity));
    let keys = write_marketing(&dir.join("marketing"), &rows.marketing, &mut counts)?;
    truth.extend(answers("marketing", &rows.marketing, keys, |r| r.entity));
    let keys = write_loyalty(&dir.join("loyalty"), &rows.loyalty, &mut counts)?;
    truth.extend(answers("loyalty", &rows.loyalty, keys, |r| r.entity));
    let truth_path = dir.join("truth.csv");
    write_truth(&truth_path, &truth)?;

    let config_path = dir.join("kith.toml");
    std::fs::write(
        &config_path,
        KITH_TOML.replace("{loyalty_url}", &opts.loyalty_url),
    )
    .with_context(|| format!("cannot write {}", config_path.display()))?;
    Ok(Generated {
        config_path,
        showcase_email: SHOWCASE_EMAIL.to_string(),
        showcase_name: format!("{SHOWCASE_GIVEN} {SHOWCASE_FAMILY}"),
        counts,
        truth_path,
    })
}

/// One line of `truth.csv`: a good source record and who it belongs to.
pub(super) struct Answer {
    pub(super) source: &'static str,
    pub(super) key: String,
    pub(super) entity: Entity,
}

/// A source's answers in key order, from its rows and the keys the writer
/// gave them (in row order). The broken rows are not among the rows: kith
/// quarantines them, so they belong to nobody.
fn answers<T>(
    source: &'static str,
    rows: &[T],
    keys: Vec<String>,
    entity: impl Fn(&T) -> Entity,
) -> Vec<Answer> {
    assert_eq!(rows.len(), keys.len(), "{source}: one key per row");
    let mut out: Vec<Answer> = rows
        .iter()
        .zip(keys)
        .map(|(r, key)| Answer {
            source,
            key,
            entity: entity(r),
        })
        .collect();
    // Keys are numbers or a fixed prefix and numbers, so shorter sorts first.
    out.sort_by(|a, b| (a.key.len(), &a.key).cmp(&(b.key.len(), &b.key)));
    out
}

/// The mapping of the five sources; it doubles as an example configuration
/// for users, hence its comments.
const KITH_TOML: &str = include_str!("kith.toml");

#[cfg(test)]
mod tests;
