//! [`Prepared`]: a record normalised once so that comparing it with many
//! others costs only byte comparisons.

use std::fmt;

use kith_model::IdentityAttrs;

use crate::compare::Attribute;
use crate::normalize::{self, DateParts, NormalizeOptions};

/// A summary of a string's bytes from which the number of bytes two strings
/// share (as multisets) is bounded above in a few instructions: bits 0–28 say
/// which of 29 classes (`a`–`z`, space, digit, other) occur at least once,
/// bits 29–57 at least twice, and the top six bits count the occurrences
/// beyond the second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Letters(u64);

impl Letters {
    /// No bound: the string is not ASCII or too repetitive to summarise.
    const UNKNOWN: Letters = Letters(u64::MAX);

    pub(crate) fn of(s: &[u8]) -> Self {
        if !s.is_ascii() {
            return Letters::UNKNOWN;
        }
        // A class seen once goes to `once`, seen again to `twice`, and each
        // later sighting counts in `extra`: no table of counts to clear and scan.
        let (mut once, mut twice, mut extra) = (0u64, 0u64, 0u64);
        for &c in s {
            let class = match c {
                b'a'..=b'z' => c - b'a',
                b' ' => 26,
                b'0'..=b'9' => 27,
                _ => 28,
            };
            let bit = 1u64 << class;
            extra += u64::from(twice & bit != 0);
            twice |= once & bit;
            once |= bit;
        }
        if extra >= 63 {
            return Letters::UNKNOWN;
        }
        Letters(once | twice << 29 | extra << 58)
    }

    /// At least the number of bytes the two strings have in common.
    #[inline]
    pub(crate) fn shared_bound(self, other: Letters) -> Option<u32> {
        if self == Letters::UNKNOWN || other == Letters::UNKNOWN {
            return None;
        }
        let both = self.0 & other.0;
        let classes = (both & ((1 << 58) - 1)).count_ones();
        Some(classes + (self.0 >> 58).min(other.0 >> 58) as u32)
    }
}

/// One normalised value of a record, with its letter summary when the
/// value is compared by Jaro–Winkler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextRef<'a> {
    bytes: &'a [u8],
    pub(crate) letters: Letters,
}

impl<'a> TextRef<'a> {
    /// A value outside any record (tests, ad hoc comparisons).
    #[cfg(test)]
    pub(crate) fn new(s: &'a str) -> Self {
        TextRef {
            bytes: s.as_bytes(),
            letters: Letters::of(s.as_bytes()),
        }
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The value as text. Values are built from `String`s and split only
    /// at their ends, so they are always UTF-8.
    pub(crate) fn as_str(&self) -> &'a str {
        std::str::from_utf8(self.bytes).unwrap_or_default()
    }

    /// Whether two values are equal, written out: for the few bytes of a
    /// name or postcode, the call into libc's `memcmp` that `==` makes
    /// costs more than comparing.
    #[inline]
    pub(crate) fn same(&self, other: &TextRef) -> bool {
        same_bytes(self.bytes, other.bytes)
    }
}

/// Byte equality without a call into `memcmp` (see [`TextRef::same`]).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Eight to sixteen bytes (an id's name, many values) as two words,
    // the first eight and the last eight, overlapping when fewer.
    if let (Some(a0), Some(a1), Some(b0), Some(b1)) = (
        a.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.first_chunk::<8>(),
        b.last_chunk::<8>(),
    ) && a.len() <= 16
    {
        return u64::from_ne_bytes(*a0) == u64::from_ne_bytes(*b0)
            && u64::from_ne_bytes(*a1) == u64::from_ne_bytes(*b1);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// A folded name with what the comparisons need precomputed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameRef<'a> {
    pub(crate) text: TextRef<'a>,
    pub(crate) soundex: Option<[u8; 4]>,
    /// Formal-name ids of the first word (empty when nicknames are off or unknown).
    pub(crate) nick: &'static [u16],
}

impl NameRef<'_> {
    pub(crate) fn initial(&self) -> Option<char> {
        self.text.as_str().chars().next()
    }
}

/// The single-valued texts of a record, in the order they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Given,
    Family,
    StreetNumber,
    Street,
    /// Every line of the street address, for when one side has no street name.
    StreetFull,
    City,
    Postcode,
    Country,
    Org,
}

const FIELDS: usize = 9;

impl Field {
    /// Where the field's letter summary is kept: only values compared by
    /// Jaro–Winkler have one.
    pub(crate) fn letters_slot(self) -> Option<usize> {
        match self {
            Field::Given => Some(0),
            Field::Family => Some(1),
            Field::Street => Some(2),
            Field::StreetFull => Some(3),
            Field::City => Some(4),
            Field::Org => Some(5),
            Field::StreetNumber | Field::Postcode | Field::Country => None,
        }
    }
}

/// The comparison-ready form of one record's [`IdentityAttrs`].
///
/// Build one per record with [`Prepared::new`] before blocking and scoring;
/// every comparison then reads these values and never re-normalises.
///
/// All of a record's texts live in one allocation, one after another, with
/// their ends alongside: scoring a million records waits on memory more
/// than it computes, and a record in a handful of neighbouring cache lines
/// (about 270 bytes with its texts, where a field per allocation took twice
/// that in a dozen places) is fetched in one trip instead of several.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The fields' texts in [`Field`] order, then the list items: e-mail
    /// addresses, phone numbers, and each external id's name and value.
    text: Box<[u8]>,
    /// Where each list item ends in `text`.
    list_ends: Box<[u32]>,
    /// Where each field ends in `text` (an absent field is empty).
    ends: [u32; FIELDS],
    letters: [Letters; 6],
    /// Formal-name ids of the given name's first word.
    nick: &'static [u16],
    pub(crate) dob: Option<DateParts>,
    /// Soundex codes of the names, `[0; 4]` when there is none.
    given_soundex: [u8; 4],
    family_soundex: [u8; 4],
    pub(crate) dataset: u16,
    /// Which fields are present, a bit each.
    present: u16,
    emails: u16,
    phones: u16,
    ids: u16,
}

/// Collects a record's texts into [`Prepared`]'s single allocation.
#[derive(Default)]
struct Builder {
    text: Vec<u8>,
    list_ends: Vec<u32>,
    ends: [u32; FIELDS],
    letters: [Letters; 6],
    present: u16,
    next: usize,
}

impl Builder {
    /// Adds the next field; fields come in [`Field`] order.
    fn field(&mut self, field: Field, value: Option<&str>) {
        debug_assert_eq!(field as usize, self.next, "fields in order");
        if let Some(v) = value {
            self.text.extend_from_slice(v.as_bytes());
            self.present |= 1 << field as u16;
            if let Some(slot) = field.letters_slot() {
                self.letters[slot] = Letters::of(v.as_bytes());
            }
        }
        self.ends[field as usize] = self.text.len() as u32;
        self.next += 1;
    }

    /// Adds list items, after every field; returns how many.
    fn items<'a>(&mut self, items: impl Iterator<Item = &'a str>) -> u16 {
        let mut n = 0u16;
        for item in items.take(usize::from(u16::MAX)) {
            self.text.extend_from_slice(item.as_bytes());
            self.list_ends.push(self.text.len() as u32);
            n += 1;
        }
        n
    }
}

const LEGAL_FORMS: &[&str] = &[
    "ltd", "limited", "inc", "llc", "plc", "gmbh", "ag", "sa", "bv", "nv", "pty", "corp", "co",
    "company", "srl", "oy", "ab", "as",
];

impl Prepared {
    pub fn new(attrs: &IdentityAttrs, opts: &NormalizeOptions) -> Self {
        let name = normalize::person_name(
            attrs.full_name.as_deref(),
            attrs.given_name.as_deref(),
            attrs.family_name.as_deref(),
        );
        let folded =
            |v: &Option<String>| v.as_deref().map(normalize::fold).filter(|s| !s.is_empty());
        let street = attrs.street.as_deref().map(normalize::street);
        let mut emails: Vec<String> = attrs
            .emails
            .iter()
            .filter_map(|e| normalize::email(e))
            .collect();
        emails.sort();
        emails.dedup();
        let mut phones: Vec<String> = attrs
            .phones
            .iter()
            .filter_map(|p| normalize::phone(p, &opts.default_region))
            .collect();
        phones.sort();
        phones.dedup();
        let external_ids: Vec<(String, String)> = attrs
            .external_ids
            .iter()
            .filter_map(|(k, v)| {
                let v = identifier(v);
                (!v.is_empty()).then(|| (k.trim().to_lowercase(), v))
            })
            .collect();
        let org = folded(&attrs.org_name).map(|o| {
            let tokens: Vec<&str> = o.split(' ').collect();
            let keep = tokens.len()
                - tokens
                    .iter()
                    .skip(1)
                    .rev()
                    .take_while(|t| LEGAL_FORMS.contains(t))
                    .count();
            tokens[..keep].join(" ")
        });
        let street_full = street.as_ref().and_then(|s| {
            let parts: Vec<&str> = [&s.number, &s.name, &s.extra]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let soundex = |n: &Option<String>| {
            n.as_deref()
                .and_then(normalize::soundex)
                .unwrap_or_default()
        };
        let nick = match &name.given {
            Some(g) if opts.nicknames => {
                normalize::nickname_groups(g.split(' ').next().unwrap_or_default())
            }
            _ => &[],
        };

        let mut b = Builder::default();
        b.field(Field::Given, name.given.as_deref());
        b.field(Field::Family, name.family.as_deref());
        b.field(
            Field::StreetNumber,
            street.as_ref().and_then(|s| s.number.as_deref()),
        );
        b.field(
            Field::Street,
            street.as_ref().and_then(|s| s.name.as_deref()),
        );
        b.field(Field::StreetFull, street_full.as_deref());
        b.field(Field::City, folded(&attrs.city).as_deref());
        b.field(
            Field::Postcode,
            attrs
                .postcode
                .as_deref()
                .and_then(normalize::postcode)
                .as_deref(),
        );
        b.field(Field::Country, folded(&attrs.country).as_deref());
        b.field(Field::Org, org.as_deref());
        let emails = b.items(emails.iter().map(String::as_str));
        let phones = b.items(phones.iter().map(String::as_str));
        let ids = b.items(
            external_ids
                .iter()
                .take(usize::from(u16::MAX / 2))
                .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
        ) / 2;
        Prepared {
            text: b.text.into_boxed_slice(),
            list_ends: b.list_ends.into_boxed_slice(),
            ends: b.ends,
            letters: b.letters,
            nick,
            dob: attrs
                .date_of_birth
                .as_deref()
                .and_then(|d| normalize::date_lenient(d, opts.day_first)),
            given_soundex: soundex(&name.given),
            family_soundex: soundex(&name.family),
            dataset: 0,
            present: b.present,
            emails,
            phones,
            ids,
        }
    }

    /// A field's value, if the record has it.
    #[inline]
    pub(crate) fn field(&self, field: Field) -> Option<TextRef<'_>> {
        if self.present & (1 << field as u16) == 0 {
            return None;
        }
        let k = field as usize;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        Some(TextRef {
            bytes: &self.text[start..self.ends[k] as usize],
            letters: field
                .letters_slot()
                .map_or(Letters::UNKNOWN, |slot| self.letters[slot]),
        })
    }

    pub(crate) fn given(&self) -> Option<NameRef<'_>> {
        self.field(Field::Given).map(|text| NameRef {
            text,
            soundex: (self.given_soundex != [0; 4]).then_some(self.given_soundex),
            nick: self.nick,
        })
    }

    pub(crate) fn family(&self) -> Option<NameRef<'_>> {
        self.field(Field::Family).map(|text| NameRef {
            text,
            soundex: (self.family_soundex != [0; 4]).then_some(self.family_soundex),
            nick: &[],
        })
    }

    /// List items `first..first + n`.
    fn items(&self, first: usize, n: u16) -> impl Iterator<Item = &[u8]> + Clone {
        (first..first + usize::from(n)).map(move |k| {
            let start = if k == 0 {
                self.ends[FIELDS - 1] as usize
            } else {
                self.list_ends[k - 1] as usize
            };
            &self.text[start..self.list_ends[k] as usize]
        })
    }

    /// List item `k`.
    #[inline]
    fn item(&self, k: usize) -> &[u8] {
        let start = match k.checked_sub(1) {
            None => self.ends[FIELDS - 1] as usize,
            Some(before) => self.list_ends[before] as usize,
        };
        &self.text[start..self.list_ends[k] as usize]
    }

    /// How many external ids the record carries.
    #[inline]
    pub(crate) fn id_count(&self) -> usize {
        usize::from(self.ids)
    }

    /// External id `k` (below [`id_count`](Prepared::id_count)) as
    /// [`external_ids`](Prepared::external_ids) gives it, without the iterators.
    #[inline]
    pub(crate) fn external_id(&self, k: usize) -> (&[u8], &[u8]) {
        let name = usize::from(self.emails) + usize::from(self.phones) + 2 * k;
        (self.item(name), self.item(name + 1))
    }

    /// E-mail addresses, normalised, sorted, distinct.
    pub(crate) fn emails(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.items(0, self.emails)
    }

    /// Phone numbers in E.164, sorted, distinct.
    pub(crate) fn phones(&self) -> impl Iterator<Item = &[u8]> + Clone {
        self.items(usize::from(self.emails), self.phones)
    }

    /// `(id name, value)`: names lower case, values upper case without separators.
    pub(crate) fn external_ids(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        let first = usize::from(self.emails) + usize::from(self.phones);
        (0..usize::from(self.ids)).map(move |k| {
            let mut pair = self.items(first + 2 * k, 2);
            (
                pair.next().unwrap_or_default(),
                pair.next().unwrap_or_default(),
            )
        })
    }

    /// Reads the record's fixed part from each of its cache lines, and
    /// returns something of it: comparing records drawn from a million waits
    /// on memory, and a batch of records touched together waits about as
    /// long as one ([`crate::touch`]).
    #[inline]
    pub(crate) fn touch_head(&self) -> usize {
        // Wrapping: the value only exists to make the reads happen; letter
        // masks are large, and a plain `+` overflows (a panic in debug builds).
        self.text
            .len()
            .wrapping_add(self.list_ends.len())
            .wrapping_add(self.ends[0] as usize)
            .wrapping_add(self.ends[FIELDS - 1] as usize)
            .wrapping_add((self.letters[0].0 ^ self.letters[5].0) as usize)
            .wrapping_add(self.nick.len())
            .wrapping_add(usize::from(self.present))
            .wrapping_add(usize::from(self.dataset))
    }

    /// Reads the record's texts: the start, the middle and the end, which
    /// for the usual hundred-odd bytes covers every cache line. No loop and
    /// no branch on the length, which would stop the processor running
    /// ahead to the next record's fetch.
    #[inline]
    pub(crate) fn touch_text(&self) -> usize {
        let t = &self.text;
        match t.len() {
            0 => 0,
            n => usize::from(t[0]) + usize::from(t[n / 2]) + usize::from(t[n - 1]),
        }
    }

    /// Bytes the record holds outside itself (its texts).
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + self.list_ends.len() * 4
    }

    /// Marks which input dataset the record came from, for linking datasets
    /// to each other without deduplicating within them ([`crate::LinkType::LinkOnly`]).
    pub fn with_dataset(mut self, dataset: u16) -> Self {
        self.dataset = dataset;
        self
    }

    pub fn dataset(&self) -> u16 {
        self.dataset
    }

    /// The normalised value an attribute is compared on, for people reading
    /// an explanation; lists are joined with `; `.
    pub fn value(&self, attribute: Attribute) -> Option<String> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let list = |items: Vec<String>| (!items.is_empty()).then(|| items.join("; "));
        let field = |f: Field| self.field(f).map(|t| t.as_str().to_string());
        match attribute {
            Attribute::GivenName => field(Field::Given),
            Attribute::FamilyName => field(Field::Family),
            Attribute::DateOfBirth => self.dob.map(|d| d.key()),
            Attribute::Email => list(self.emails().map(text).collect()),
            Attribute::Phone => list(self.phones().map(text).collect()),
            Attribute::ExternalId => list(
                self.external_ids()
                    .map(|(k, v)| format!("{}={}", text(k), text(v)))
                    .collect(),
            ),
            Attribute::StreetNumber => field(Field::StreetNumber),
            Attribute::Street => field(Field::Street).or_else(|| field(Field::StreetFull)),
            Attribute::City => field(Field::City),
            Attribute::Postcode => field(Field::Postcode),
            Attribute::Country => field(Field::Country),
            Attribute::OrgName => field(Field::Org),
        }
    }

    /// The value whose frequency adjusts an exact match on `attribute`.
    pub(crate) fn tf_value(&self, attribute: Attribute) -> Option<&[u8]> {
        let field = match attribute {
            Attribute::GivenName => Field::Given,
            Attribute::FamilyName => Field::Family,
            Attribute::StreetNumber => Field::StreetNumber,
            Attribute::City => Field::City,
            Attribute::Postcode => Field::Postcode,
            _ => return None,
        };
        self.field(field).map(|t| t.as_bytes())
    }
}

impl fmt::Debug for Prepared {
    // The values as an explanation shows them, not the packed bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Prepared");
        d.field("dataset", &self.dataset);
        for a in Attribute::ALL {
            if let Some(v) = self.value(a) {
                d.field(a.name(), &v);
            }
        }
        d.finish()
    }
}

/// An identifier's letters and digits, upper case: `ab-12` is `AB12`.
fn identifier(raw: &str) -> String {
    if raw.is_ascii() {
        // Unicode case mapping is most of the cost of preparing a record
        // with an id, and changes nothing in ASCII.
        return raw
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_uppercase()))
            .collect();
    }
    raw.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn prepares_every_attribute() {
        let attrs = IdentityAttrs {
            full_name: Some("Lee, Peggy".into()),
            emails: vec![
                "P.Lee@gmail.com".into(),
                "plee@gmail.com".into(),
                "x".into(),
            ],
            phones: vec!["07700 900123".into()],
            street: Some("12 High St, Flat 2".into()),
            city: Some("  Lönd0n ".into()),
            postcode: Some("sw1a 1aa".into()),
            country: Some("GB".into()),
            date_of_birth: Some("29/02/2000".into()),
            org_name: Some("Acme Widgets Ltd.".into()),
            external_ids: BTreeMap::from([("Loyalty".into(), " ab-12 ".into())]),
            ..Default::default()
        };
        let p = Prepared::new(&attrs, &NormalizeOptions::default());
        assert_eq!(p.value(Attribute::GivenName).as_deref(), Some("peggy"));
        assert_eq!(p.value(Attribute::FamilyName).as_deref(), Some("lee"));
        assert!(!p.given().unwrap().nick.is_empty());
        assert!(p.family().unwrap().nick.is_empty());
        assert_eq!(p.family().unwrap().soundex, Some(*b"L000"));
        assert_eq!(p.value(Attribute::Email).as_deref(), Some("plee@gmail.com"));
        assert_eq!(p.value(Attribute::Phone).as_deref(), Some("+447700900123"));
        assert_eq!(p.value(Attribute::StreetNumber).as_deref(), Some("12"));
        assert_eq!(p.value(Attribute::Street).as_deref(), Some("high street"));
        assert_eq!(
            p.field(Field::StreetFull).map(|t| t.as_str()),
            Some("12 high street flat 2")
        );
        assert_eq!(p.value(Attribute::City).as_deref(), Some("lond0n"));
        assert_eq!(p.value(Attribute::Postcode).as_deref(), Some("SW1A1AA"));
        assert_eq!(p.value(Attribute::DateOfBirth).as_deref(), Some("20000229"));
        assert_eq!(p.value(Attribute::OrgName).as_deref(), Some("acme widgets"));
        assert_eq!(
            p.value(Attribute::ExternalId).as_deref(),
            Some("loyalty=AB12")
        );
        assert_eq!(p.given().unwrap().initial(), Some('p'));
        // Every value is where its field says, with the lists after them.
        let both = IdentityAttrs {
            emails: vec!["b@x.com".into(), "a@x.com".into()],
            phones: vec!["+44 7700 900123".into()],
            external_ids: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "22".into())]),
            ..attrs
        };
        let q = Prepared::new(&both, &NormalizeOptions::default());
        assert_eq!(
            q.emails().collect::<Vec<_>>(),
            vec![&b"a@x.com"[..], &b"b@x.com"[..]]
        );
        assert_eq!(q.phones().collect::<Vec<_>>(), vec![&b"+447700900123"[..]]);
        assert_eq!(
            q.external_ids().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"22"[..])]
        );
        assert_eq!(q.value(Attribute::OrgName).as_deref(), Some("acme widgets"));
        assert!(q.touch_head() > 0 && q.touch_text() > 0);
        assert_eq!(q.heap_bytes(), q.text.len() + 4 * 7);
    }

    #[test]
    fn word_equality_is_byte_equality() {
        // Every length around the words' edges, equal and one byte apart.
        for n in 0..=20usize {
            let a: Vec<u8> = (0..n as u8).map(|k| b'a' + k).collect();
            assert!(same_bytes(&a, &a.clone()));
            for k in 0..n {
                let mut b = a.clone();
                b[k] = b'#';
                assert!(!same_bytes(&a, &b), "{n} {k}");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }

    #[test]
    fn external_ids_by_index_as_by_iterator() {
        let attrs = IdentityAttrs {
            emails: vec!["a@x.com".into()],
            phones: vec!["+44 7700 900123".into()],
            external_ids: BTreeMap::from([("a".into(), "1".into()), ("bb".into(), "22".into())]),
            ..Default::default()
        };
        for attrs in [attrs, IdentityAttrs::default()] {
            let p = Prepared::new(&attrs, &NormalizeOptions::default());
            let by_index: Vec<_> = (0..p.id_count()).map(|k| p.external_id(k)).collect();
            assert_eq!(by_index, p.external_ids().collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_letter_summary_is_the_counts_summary() {
        // The summary as defined: from each class's count.
        let by_counts = |s: &[u8]| {
            let mut counts = [0u64; 29];
            for &c in s {
                let class = match c {
                    b'a'..=b'z' => c - b'a',
                    b' ' => 26,
                    b'0'..=b'9' => 27,
                    _ => 28,
                };
                counts[usize::from(class)] += 1;
            }
            let (mut once, mut twice, mut extra) = (0u64, 0u64, 0u64);
            for (k, &n) in counts.iter().enumerate() {
                once |= u64::from(n >= 1) << k;
                twice |= u64::from(n >= 2) << k;
                extra += n.saturating_sub(2);
            }
            if extra >= 63 {
                Letters::UNKNOWN
            } else {
                Letters(once | twice << 29 | extra << 58)
            }
        };
        let mut seed = 7u64;
        for _ in 0..5000 {
            let n = (seed % 80) as usize;
            let s: Vec<u8> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    b"aabcz 09-"[(seed >> 33) as usize % 9]
                })
                .collect();
            assert_eq!(
                Letters::of(&s),
                by_counts(&s),
                "{:?}",
                String::from_utf8_lossy(&s)
            );
        }
    }

    #[test]
    fn the_letter_summary_bounds_shared_bytes() {
        let shared = |a: &str, b: &str| {
            let mut left: Vec<u8> = b.bytes().collect();
            a.bytes()
                .filter(|c| {
                    left.iter()
                        .position(|d| d == c)
                        .map(|i| left.remove(i))
                        .is_some()
                })
                .count() as u32
        };
        let words = [
            "",
            "a",
            "aa",
            "aaa",
            "anna",
            "hannah",
            "banana",
            "12 high street",
            "x-y z",
            "mississippi",
        ];
        for a in words {
            for b in words {
                let bound = Letters::of(a.as_bytes())
                    .shared_bound(Letters::of(b.as_bytes()))
                    .unwrap();
                assert!(bound >= shared(a, b), "{a:?} {b:?}");
            }
        }
        assert_eq!(
            Letters::of("zoë".as_bytes()).shared_bound(Letters::of(b"zoe")),
            None
        );
        assert_eq!(Letters::of("a".repeat(70).as_bytes()), Letters::UNKNOWN);
    }

    #[test]
    fn empty_attributes_prepare_to_nothing() {
        let attrs = IdentityAttrs {
            given_name: Some("  ".into()),
            street: Some(" , ".into()),
            date_of_birth: Some("unknown".into()),
            external_ids: BTreeMap::from([("id".into(), " - ".into())]),
            ..Default::default()
        };
        let p = Prepared::new(&attrs, &NormalizeOptions::default());
        assert_eq!(p, Prepared::default());
        for a in Attribute::ALL {
            assert_eq!(p.value(a), None, "{a:?}");
        }
    }
}
