//! Normalisation of identifying values into the forms the comparisons use.
//!
//! Each function takes one raw value as a source holds it and returns its
//! normal form, or `None` when nothing usable is left (an empty field, `n/a`,
//! an e-mail without a domain). Normalising is lossy on purpose: it removes
//! the differences that do not tell people apart (case, accents, `St` for
//! `Street`) so that the differences that remain are evidence.

use std::collections::HashMap;
use std::sync::OnceLock;

use kith_model::normalize as base;
use serde::{Deserialize, Serialize};

/// How raw values are read. Part of the resolver's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NormalizeOptions {
    /// ISO 3166 region whose calling code national phone numbers are read in.
    pub default_region: String,
    /// Whether `03/04/1980` is the 3rd of April (day first) or the 4th of March.
    pub day_first: bool,
    /// Whether `Bill` and `William` may match as the same given name.
    pub nicknames: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            default_region: "GB".into(),
            day_first: true,
            nicknames: true,
        }
    }
}

/// Folds a name or address for comparison: letters without accents, lower
/// case, apostrophes dropped (`O'Brien` is `obrien`, as people type it),
/// other punctuation turned into spaces, whitespace collapsed.
pub fn fold(raw: &str) -> String {
    if raw.is_ascii() {
        return fold_ascii(raw);
    }
    let mut pre = String::with_capacity(raw.len());
    for c in raw.chars() {
        // Letters that Unicode does not decompose into a base letter plus a mark.
        match c {
            '\'' | '’' | '`' | '´' => {}
            'ß' => pre.push_str("ss"),
            'æ' | 'Æ' => pre.push_str("ae"),
            'œ' | 'Œ' => pre.push_str("oe"),
            'ø' | 'Ø' => pre.push('o'),
            'ł' | 'Ł' => pre.push('l'),
            'đ' | 'Đ' => pre.push('d'),
            'þ' | 'Þ' => pre.push_str("th"),
            _ => pre.push(c),
        }
    }
    base::text(&pre)
}

/// [`fold`] of ASCII text, without the Unicode decomposition that costs
/// most of the time of preparing a record and changes nothing in ASCII.
fn fold_ascii(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut gap = false;
    for b in raw.bytes() {
        match b {
            b'\'' | b'`' => {}
            _ if b.is_ascii_alphanumeric() => {
                if gap && !out.is_empty() {
                    out.push(' ');
                }
                gap = false;
                out.push(char::from(b.to_ascii_lowercase()));
            }
            _ => gap = true,
        }
    }
    out
}

const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "fr", "lady", "lord",
];
const SUFFIXES: &[&str] = &[
    "jr", "jnr", "junior", "sr", "snr", "senior", "ii", "iii", "iv", "phd", "md", "esq",
];
/// Words that start a family name of several words (`van der Berg`).
const PARTICLES: &[&str] = &[
    "van", "von", "de", "der", "den", "da", "di", "del", "della", "du", "la", "le", "st", "ter",
    "ten", "dos", "das", "bin", "ibn", "al", "el",
];

/// A person's name split into given and family parts, each folded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName {
    pub given: Option<String>,
    pub family: Option<String>,
}

/// Reads a person's name from whichever of the three fields a source fills.
/// Separate given and family fields win; a full name fills the gaps, read as
/// `Family, Given` when it has a comma and `Given [Middle…] Family` otherwise.
pub fn person_name(full: Option<&str>, given: Option<&str>, family: Option<&str>) -> PersonName {
    let clean = |s: Option<&str>| {
        s.map(|s| strip_titles(&fold(s)))
            .filter(|s: &String| !s.is_empty())
    };
    let mut name = PersonName {
        given: clean(given),
        family: clean(family),
    };
    if (name.given.is_none() || name.family.is_none())
        && let Some(parsed) = full.map(parse_full_name)
    {
        name.given = name.given.or(parsed.given);
        name.family = name.family.or(parsed.family);
    }
    name
}

fn strip_titles(folded: &str) -> String {
    let tokens: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    let mut start = 0;
    // Keep a lone word even when it looks like a title: "Miss" may be all we have.
    while start + 1 < tokens.len() && TITLES.contains(&tokens[start]) {
        start += 1;
    }
    let mut end = tokens.len();
    while end > start + 1 && SUFFIXES.contains(&tokens[end - 1]) {
        end -= 1;
    }
    tokens[start..end].join(" ")
}

fn parse_full_name(raw: &str) -> PersonName {
    let some = |s: String| (!s.is_empty()).then_some(s);
    if let Some((family, given)) = raw.split_once(',') {
        return PersonName {
            given: some(strip_titles(&fold(given))),
            family: some(strip_titles(&fold(family))),
        };
    }
    let folded = strip_titles(&fold(raw));
    let tokens: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    match tokens.len() {
        0 => PersonName::default(),
        1 => PersonName {
            given: Some(tokens[0].to_string()),
            family: None,
        },
        n => {
            let family_start = (1..n - 1)
                .find(|&i| PARTICLES.contains(&tokens[i]))
                .unwrap_or(n - 1);
            PersonName {
                given: Some(tokens[0].to_string()),
                family: Some(tokens[family_start..].join(" ")),
            }
        }
    }
}

struct Nicknames {
    /// Folded name → ids of the formal names it can stand for (its own included).
    groups: HashMap<&'static str, Vec<u16>>,
    formal: Vec<&'static str>,
}

fn nicknames() -> &'static Nicknames {
    static TABLE: OnceLock<Nicknames> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut formal: Vec<&'static str> = Vec::new();
        let mut ids: HashMap<&'static str, u16> = HashMap::new();
        let mut groups: HashMap<&'static str, Vec<u16>> = HashMap::new();
        for line in include_str!("../data/nicknames.csv").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((nick, name)) = line.split_once(',') else {
                continue;
            };
            let id = *ids.entry(name).or_insert_with(|| {
                formal.push(name);
                (formal.len() - 1) as u16
            });
            for key in [nick, name] {
                let g = groups.entry(key).or_default();
                if !g.contains(&id) {
                    g.push(id);
                    g.sort_unstable();
                }
            }
        }
        Nicknames { groups, formal }
    })
}

/// Ids of the formal names a given name may stand for (empty when the shipped
/// table does not know it). Two names are nicknames of each other when their
/// sets intersect.
pub(crate) fn nickname_groups(first_name: &str) -> &'static [u16] {
    nicknames()
        .groups
        .get(first_name)
        .map_or(&[], |v| v.as_slice())
}

/// The formal names a folded given name may stand for, for explanations:
/// `formal_names("peggy") == ["margaret"]`.
pub fn formal_names(name: &str) -> Vec<&'static str> {
    let table = nicknames();
    nickname_groups(name)
        .iter()
        .map(|&id| table.formal[id as usize])
        .collect()
}

/// Whether two folded given names are the same or nicknames of one formal name.
pub fn same_given_name(a: &str, b: &str) -> bool {
    a == b || intersects(nickname_groups(a), nickname_groups(b))
}

pub(crate) fn intersects(a: &[u16], b: &[u16]) -> bool {
    a.iter().any(|x| b.contains(x))
}

/// Providers known to ignore dots in the local part and to deliver `a+tag@`
/// to `a@`. Elsewhere a dot or plus may be significant, so it is kept.
const DOTLESS_PROVIDERS: &[&str] = &["gmail.com", "googlemail.com"];

/// An e-mail address in the form that identifies a mailbox: lower case, and
/// for providers where it is safe, without dots or a `+tag` in the local part.
pub fn email(raw: &str) -> Option<String> {
    let e = base::email(raw)?;
    let (local, domain) = e.split_once('@')?;
    if DOTLESS_PROVIDERS.contains(&domain) {
        let local = local.split('+').next().unwrap_or_default().replace('.', "");
        return (!local.is_empty()).then(|| format!("{local}@gmail.com"));
    }
    Some(e)
}

/// A phone number in E.164 form. Numbers without an international prefix are
/// read in `default_region`; in a region kith does not know they are refused
/// rather than guessed.
pub fn phone(raw: &str, default_region: &str) -> Option<String> {
    match base::calling_code(default_region) {
        Some(code) => base::phone(raw, code),
        None => {
            let t = raw.trim();
            (t.starts_with('+') || t.starts_with("00"))
                .then(|| base::phone(t, "0"))
                .flatten()
        }
    }
}

/// A postcode without spaces, upper case.
pub fn postcode(raw: &str) -> Option<String> {
    Some(base::postcode(raw)).filter(|p| !p.is_empty())
}

const STREET_WORDS: &[(&str, &str)] = &[
    ("rd", "road"),
    ("ave", "avenue"),
    ("av", "avenue"),
    ("dr", "drive"),
    ("drv", "drive"),
    ("ln", "lane"),
    ("ct", "court"),
    ("crt", "court"),
    ("pl", "place"),
    ("cres", "crescent"),
    ("cr", "crescent"),
    ("blvd", "boulevard"),
    ("hwy", "highway"),
    ("pde", "parade"),
    ("tce", "terrace"),
    ("terr", "terrace"),
    ("cct", "circuit"),
    ("cl", "close"),
    ("sq", "square"),
    ("gdns", "gardens"),
    ("gr", "grove"),
    ("pk", "park"),
    ("wy", "way"),
    ("cir", "circle"),
    ("esp", "esplanade"),
    ("mt", "mount"),
    ("apt", "apartment"),
    ("n", "north"),
    ("s", "south"),
    ("e", "east"),
    ("w", "west"),
];

/// The length of the longest abbreviation in [`STREET_WORDS`].
const MAX_STREET_ABBREVIATION: usize = 4;

/// A street address split for comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Street {
    /// The house number (`12`, `12a`, `12 14` for `12-14`).
    pub number: Option<String>,
    /// The street name of the first line, abbreviations spelt out.
    pub name: Option<String>,
    /// Further lines (a building, a locality), folded.
    pub extra: Option<String>,
}

/// Splits and folds a street address: the first line (up to a comma or line
/// break) gives the house number and street name; `St` is `street` at the end
/// of a name and `saint` before one.
pub fn street(raw: &str) -> Street {
    let mut lines = raw.split([',', '\n']);
    let first = fold(lines.next().unwrap_or_default());
    let extra: Vec<String> = lines
        .map(|l| expand_street_words(&fold(l)))
        .filter(|l| !l.is_empty())
        .collect();
    let tokens: Vec<&str> = first.split(' ').filter(|t| !t.is_empty()).collect();
    let n_number = tokens
        .iter()
        .take_while(|t| t.bytes().any(|b| b.is_ascii_digit()))
        .count();
    let some = |s: String| (!s.is_empty()).then_some(s);
    Street {
        number: some(tokens[..n_number].join(" ")),
        name: some(expand_street_words(&tokens[n_number..].join(" "))),
        extra: some(extra.join(" ")),
    }
}

fn expand_street_words(folded: &str) -> String {
    let tokens: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    let last = tokens.len().saturating_sub(1);
    tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| match t {
            "st" | "str" if i == last && i > 0 => "street",
            "st" => "saint",
            // Every abbreviation is short: longer words skip the search.
            _ if t.len() > MAX_STREET_ABBREVIATION || i == 0 => t,
            _ => STREET_WORDS
                .iter()
                .find(|(abbr, _)| *abbr == t)
                .map_or(t, |(_, word)| word),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A calendar date, or a birthday without a year (`year == None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DateParts {
    pub year: Option<u16>,
    pub month: u8,
    pub day: u8,
}

impl DateParts {
    /// Whether the date exists (29 February only in leap years; a birthday
    /// without a year may be on any 29 February).
    pub fn is_valid(&self) -> bool {
        let leap = self
            .year
            .is_none_or(|y| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0);
        let max_day = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=max_day).contains(&self.day)
    }

    /// `YYYYMMDD`, or `--MMDD` for a birthday without a year (ISO 8601's form).
    pub fn key(&self) -> String {
        match self.year {
            Some(y) => format!("{y:04}{:02}{:02}", self.month, self.day),
            None => format!("--{:02}{:02}", self.month, self.day),
        }
    }

    /// [`DateParts::key`] written into `buf`, without allocating: blocking
    /// on dates of birth writes a key for every record.
    pub(crate) fn key_bytes<'a>(&self, buf: &'a mut [u8; 8]) -> &'a [u8] {
        let digit = |n: u16| b'0' + (n % 10) as u8;
        let (m, d) = (u16::from(self.month), u16::from(self.day));
        match self.year {
            Some(y) => {
                *buf = [
                    digit(y / 1000),
                    digit(y / 100),
                    digit(y / 10),
                    digit(y),
                    digit(m / 10),
                    digit(m),
                    digit(d / 10),
                    digit(d),
                ];
                &buf[..]
            }
            None => {
                buf[..6].copy_from_slice(&[
                    b'-',
                    b'-',
                    digit(m / 10),
                    digit(m),
                    digit(d / 10),
                    digit(d),
                ]);
                &buf[..6]
            }
        }
    }

    /// Days since 1970-01-01, for a valid date with a year.
    pub fn days(&self) -> Option<i64> {
        let y = i64::from(self.year?);
        if !self.is_valid() {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(era * 146_097 + doe - 719_468)
    }
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month_number(word: &str) -> Option<u8> {
    if word.len() < 3 {
        return None;
    }
    let word = if word == "sept" { "sep" } else { word };
    MONTHS
        .iter()
        .position(|m| m.starts_with(word))
        .map(|i| i as u8 + 1)
}

/// A date read from `YYYY-MM-DD`, `YYYYMMDD`, `DD/MM/YYYY` (or month first,
/// by `day_first`, and swapped when only the other order is a date),
/// `5 March 1980`, `March 5, 1980`, or a birthday without a year: `5 March`,
/// `--03-05`, `05/03`. Only dates that exist are returned.
pub fn date(raw: &str, day_first: bool) -> Option<DateParts> {
    let s = raw.trim().to_lowercase();
    let yearless_iso = s.starts_with("--");
    let tokens: Vec<&str> = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(strip_ordinal)
        .collect();
    let num = |t: &str| t.parse::<u16>().ok();
    let year = |t: &str| (t.len() == 4).then(|| num(t)).flatten();
    let small = |t: &str| (t.len() <= 2).then(|| num(t)).flatten().map(|n| n as u8);
    let ymd = |y: Option<u16>, m: u8, d: u8| {
        let p = DateParts {
            year: y,
            month: m,
            day: d,
        };
        p.is_valid().then_some(p)
    };
    // Day and month in the configured order, or swapped when only that is a date.
    let dm = |y: Option<u16>, a: u8, b: u8| {
        let (d, m) = if day_first { (a, b) } else { (b, a) };
        ymd(y, m, d).or_else(|| ymd(y, d, m))
    };
    if let Some(month_pos) = tokens.iter().position(|t| month_number(t).is_some()) {
        let month = month_number(tokens[month_pos])?;
        let others: Vec<&str> = tokens
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != month_pos)
            .map(|(_, t)| *t)
            .collect();
        let y = others.iter().find_map(|t| year(t));
        let d = others.iter().find_map(|t| small(t))?;
        if others.len() > 2 || (others.len() == 2 && y.is_none()) {
            return None;
        }
        return ymd(y, month, d);
    }
    match tokens.as_slice() {
        [t] if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) => {
            let (a, b, c) = (&t[..4], &t[4..6], &t[6..]);
            let parsed = ymd(num(a), small(b)?, small(c)?);
            // DDMMYYYY when the leading four digits cannot be a birth year.
            parsed.or_else(|| dm(num(&t[4..]), small(&t[..2])?, small(&t[2..4])?))
        }
        [a, b, c] if a.len() == 4 => ymd(Some(year(a)?), small(b)?, small(c)?),
        [a, b, c] if c.len() == 4 => dm(Some(year(c)?), small(a)?, small(b)?),
        [a, b] if yearless_iso => ymd(None, small(a)?, small(b)?),
        [a, b] if a.len() <= 2 && b.len() <= 2 => dm(None, small(a)?, small(b)?),
        _ => None,
    }
}

/// Like [`date`], but a `YYYYMMDD` or `YYYY-MM-DD` value that is not a real
/// date (`19561309`) is kept as its parts: a typo in a date of birth is still
/// evidence when the other record has the date it was meant to be.
pub fn date_lenient(raw: &str, day_first: bool) -> Option<DateParts> {
    date(raw, day_first).or_else(|| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let compact = raw
            .trim()
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '/');
        if digits.len() != 8 || !compact {
            return None;
        }
        Some(DateParts {
            year: Some(digits[..4].parse().ok()?),
            month: digits[4..6].parse().ok()?,
            day: digits[6..].parse().ok()?,
        })
    })
}

fn strip_ordinal(t: &str) -> &str {
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(n) = t.strip_suffix(suffix)
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            return n;
        }
    }
    t
}

/// American Soundex of the letters of a folded word (`robert` and `rupert`
/// are both `R163`), or `None` when it has no ASCII letter.
pub fn soundex(folded: &str) -> Option<[u8; 4]> {
    fn code(c: u8) -> u8 {
        match c {
            b'b' | b'f' | b'p' | b'v' => b'1',
            b'c' | b'g' | b'j' | b'k' | b'q' | b's' | b'x' | b'z' => b'2',
            b'd' | b't' => b'3',
            b'l' => b'4',
            b'm' | b'n' => b'5',
            b'r' => b'6',
            b'h' | b'w' => b'h',
            _ => b'0',
        }
    }
    let mut letters = folded.bytes().filter(u8::is_ascii_lowercase);
    let first = letters.next()?;
    let mut out = [first.to_ascii_uppercase(), b'0', b'0', b'0'];
    let mut n = 1;
    let mut last = code(first);
    for c in letters {
        let k = code(c);
        match k {
            // h and w do not separate two letters of the same code.
            b'h' => continue,
            b'0' => last = b'0',
            _ if k != last => {
                out[n] = k;
                n += 1;
                last = k;
                if n == 4 {
                    break;
                }
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn street_abbreviations_fit_the_length_the_search_assumes() {
        for (abbr, _) in super::STREET_WORDS {
            assert!(abbr.len() <= super::MAX_STREET_ABBREVIATION, "{abbr}");
        }
    }

    use super::*;

    #[test]
    fn fold_handles_accents_case_punctuation_and_empty() {
        assert_eq!(fold("  José  O'Brien-Núñez "), "jose obrien nunez");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Søren Łukasz"), "soren lukasz");
        assert_eq!(fold(""), "");
        assert_eq!(fold(" ,. "), "");
        assert_eq!(fold("ZOË"), "zoe");
    }

    #[test]
    fn the_ascii_shortcut_folds_as_the_unicode_path_does() {
        for raw in [
            "",
            " ",
            "O'Brien-Smith",
            "  a  b  ",
            "ABC,def.GHI",
            "12-14 High St.",
            "`x'",
            "--",
            "Ann\tLee\n",
        ] {
            assert_eq!(
                fold_ascii(raw),
                base::text(&raw.replace(['\'', '`'], "")),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn names_from_parts_or_full_name() {
        let n = person_name(None, Some(" Ann "), Some("LEE"));
        assert_eq!(n.given.as_deref(), Some("ann"));
        assert_eq!(n.family.as_deref(), Some("lee"));

        let n = person_name(Some("Lee, Dr Ann"), None, None);
        assert_eq!(n.given.as_deref(), Some("ann"));
        assert_eq!(n.family.as_deref(), Some("lee"));

        let n = person_name(Some("Mr Jan Peter van der Berg Jr."), None, None);
        assert_eq!(n.given.as_deref(), Some("jan"));
        assert_eq!(n.family.as_deref(), Some("van der berg"));

        // Separate fields win; the full name only fills the gap.
        let n = person_name(Some("Robert Smith"), Some("Bob"), None);
        assert_eq!(n.given.as_deref(), Some("bob"));
        assert_eq!(n.family.as_deref(), Some("smith"));

        let n = person_name(Some("  "), Some(""), None);
        assert_eq!(n, PersonName::default());
        let n = person_name(Some("Cher"), None, None);
        assert_eq!(n.given.as_deref(), Some("cher"));
        assert_eq!(n.family, None);
        assert_eq!(
            person_name(None, Some("Miss"), None).given.as_deref(),
            Some("miss")
        );
    }

    #[test]
    fn nicknames_from_the_shipped_table() {
        assert!(same_given_name("bill", "william"));
        assert!(same_given_name("peggy", "margaret"));
        assert!(same_given_name("peggy", "maggie"));
        assert!(same_given_name("alex", "alexandra"));
        assert!(!same_given_name("bill", "robert"));
        assert!(!same_given_name("", "william"));
        assert!(same_given_name("zorro", "zorro"));
        assert_eq!(formal_names("peggy"), vec!["margaret"]);
        assert!(formal_names("zorro").is_empty());
    }

    #[test]
    fn emails_drop_dots_and_tags_only_where_safe() {
        assert_eq!(
            email("Ann.Lee+shop@GoogleMail.com").as_deref(),
            Some("annlee@gmail.com")
        );
        assert_eq!(email("a.n.n@gmail.com").as_deref(), Some("ann@gmail.com"));
        assert_eq!(
            email("Ann.Lee+shop@example.com").as_deref(),
            Some("ann.lee+shop@example.com")
        );
        assert_eq!(email("+tag@gmail.com"), None);
        assert_eq!(email(""), None);
        assert_eq!(email("nobody"), None);
    }

    #[test]
    fn phones_to_e164_with_a_default_region() {
        assert_eq!(
            phone("07700 900123", "GB").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            phone("(02) 9876 5432", "AU").as_deref(),
            Some("+61298765432")
        );
        assert_eq!(
            phone("+44 7700 900123", "ZZ").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(phone("07700 900123", "ZZ"), None);
        assert_eq!(phone("", "GB"), None);
    }

    #[test]
    fn postcodes() {
        assert_eq!(postcode(" sw1a 1aa ").as_deref(), Some("SW1A1AA"));
        assert_eq!(postcode(" - "), None);
    }

    #[test]
    fn streets_split_and_spell_out_abbreviations() {
        let s = street("12a St. John's Rd, Flat 3");
        assert_eq!(s.number.as_deref(), Some("12a"));
        assert_eq!(s.name.as_deref(), Some("saint johns road"));
        assert_eq!(s.extra.as_deref(), Some("flat 3"));
        assert_eq!(
            street("8 Stanley St").name.as_deref(),
            Some("stanley street")
        );
        assert_eq!(
            street("8 Stanley Street").name,
            street("8 stanley st.").name
        );
        let s = street(", miami");
        assert_eq!((s.number, s.name), (None, None));
        assert_eq!(s.extra.as_deref(), Some("miami"));
        assert_eq!(street(""), Street::default());
        assert_eq!(street("12-14 Høgsgade").number.as_deref(), Some("12 14"));
        assert_eq!(street("12-14 Høgsgade").name.as_deref(), Some("hogsgade"));
    }

    fn ymd(y: u16, m: u8, d: u8) -> Option<DateParts> {
        Some(DateParts {
            year: Some(y),
            month: m,
            day: d,
        })
    }

    #[test]
    fn dates_in_several_formats() {
        let want = ymd(1980, 3, 5);
        for raw in [
            "1980-03-05",
            "19800305",
            "05/03/1980",
            "5.3.1980",
            "5 March 1980",
            "5th Mar 1980",
            "March 5, 1980",
            "1980/3/5",
            "05031980",
        ] {
            assert_eq!(date(raw, true), want, "{raw}");
        }
        assert_eq!(date("03/05/1980", false), want);
        // Only the month-first reading is a date.
        assert_eq!(date("03/25/1980", true), ymd(1980, 3, 25));
        assert_eq!(date("", true), None);
        assert_eq!(date("n/a", true), None);
        assert_eq!(date("1980-13-45", true), None);
        assert_eq!(date("5 Marchember", true), None);
    }

    #[test]
    fn birthdays_without_a_year_and_29_february() {
        let parts = DateParts {
            year: None,
            month: 2,
            day: 29,
        };
        let bday = Some(parts);
        assert_eq!(date("29 February", true), bday);
        assert_eq!(date("--02-29", true), bday);
        assert_eq!(date("29/02", true), bday);
        assert_eq!(date("2000-02-29", true), ymd(2000, 2, 29));
        assert_eq!(date("1900-02-29", true), None);
        assert_eq!(date("2023-02-29", true), None);
        assert_eq!(date("2024-02-29", true), ymd(2024, 2, 29));
        assert_eq!(parts.key(), "--0229");
    }

    #[test]
    fn lenient_dates_keep_typos_in_compact_form() {
        assert_eq!(date_lenient("19561309", true), ymd(1956, 13, 9));
        assert_eq!(date_lenient("1956-02-30", true), ymd(1956, 2, 30));
        assert_eq!(date_lenient("hello", true), None);
        assert!(!ymd(1956, 13, 9).unwrap().is_valid());
    }

    #[test]
    fn day_numbers() {
        assert_eq!(ymd(1970, 1, 1).unwrap().days(), Some(0));
        assert_eq!(ymd(2000, 3, 1).unwrap().days(), Some(11_017));
        assert_eq!(ymd(1969, 12, 31).unwrap().days(), Some(-1));
        assert_eq!(ymd(1956, 13, 9).unwrap().days(), None);
        assert_eq!(
            ymd(2001, 3, 1).unwrap().days().unwrap() - ymd(2000, 3, 1).unwrap().days().unwrap(),
            365
        );
    }

    #[test]
    fn soundex_codes() {
        assert_eq!(soundex("robert"), Some(*b"R163"));
        assert_eq!(soundex("rupert"), Some(*b"R163"));
        assert_eq!(soundex("ashcraft"), Some(*b"A261"));
        assert_eq!(soundex("tymczak"), Some(*b"T522"));
        assert_eq!(soundex("pfister"), Some(*b"P236"));
        assert_eq!(soundex("lee"), Some(*b"L000"));
        assert_eq!(soundex(""), None);
        assert_eq!(soundex("123"), None);
    }
}
