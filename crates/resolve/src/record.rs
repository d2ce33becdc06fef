//! [`Prepared`]: a record normalised once so that comparing it with many
//! others costs only string comparisons.

use std::fmt;
use std::ops::Deref;

use kith_model::IdentityAttrs;

use crate::compare::Attribute;
use crate::normalize::{self, DateParts, NormalizeOptions};

/// A short string kept inside the record rather than behind a pointer.
///
/// Training compares a million random pairs of records; with every value in
/// its own allocation each pair touches dozens of scattered cache lines, and
/// waiting for memory, not comparing, took most of the time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Text {
    repr: Repr,
    /// Which letters occur once and twice, for a cheap bound on Jaro–Winkler.
    pub(crate) letters: Letters,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

const INLINE: usize = 22;

impl Text {
    pub(crate) fn new(s: &str) -> Self {
        let repr = if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Repr::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Repr::Heap(s.into())
        };
        Text {
            repr,
            letters: Letters::of(s.as_bytes()),
        }
    }

    /// The bytes, without the UTF-8 check that `Deref` makes.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Heap(s) => s.as_bytes(),
        }
    }
}

/// A summary of a string's bytes from which the number of bytes two strings
/// share (as multisets) is bounded above in a few instructions: bits 0–28 say
/// which of 29 classes (`a`–`z`, space, digit, other) occur at least once,
/// bits 29–57 at least twice, and the top six bits count the occurrences
/// beyond the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Letters(u64);

impl Letters {
    /// No bound: the string is not ASCII or too repetitive to summarise.
    const UNKNOWN: Letters = Letters(u64::MAX);

    fn of(s: &[u8]) -> Self {
        if !s.is_ascii() {
            return Letters::UNKNOWN;
        }
        let mut counts = [0u8; 29];
        for &c in s {
            let class = match c {
                b'a'..=b'z' => c - b'a',
                b' ' => 26,
                b'0'..=b'9' => 27,
                _ => 28,
            };
            counts[class as usize] = counts[class as usize].saturating_add(1);
        }
        let (mut once, mut twice, mut extra) = (0u64, 0u64, 0u64);
        for (k, &n) in counts.iter().enumerate() {
            once |= u64::from(n >= 1) << k;
            twice |= u64::from(n >= 2) << k;
            extra += u64::from(n.saturating_sub(2));
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

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        // Built from a &str, so always UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Debug for Text {
    // Shows the string alone: the summary is derived from it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new(&s)
    }
}

/// A folded name with what the comparisons need precomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) text: Text,
    pub(crate) soundex: Option<[u8; 4]>,
    /// Formal-name ids of the first word (empty when nicknames are off or unknown).
    pub(crate) nick: &'static [u16],
}

impl Name {
    fn new(text: String, nicknames: bool) -> Self {
        let first = text.split(' ').next().unwrap_or_default();
        Name {
            soundex: normalize::soundex(&text),
            nick: if nicknames {
                normalize::nickname_groups(first)
            } else {
                &[]
            },
            text: Text::new(&text),
        }
    }

    pub(crate) fn initial(&self) -> Option<char> {
        self.text.chars().next()
    }
}

/// The comparison-ready form of one record's [`IdentityAttrs`].
///
/// Build one per record with [`Prepared::new`] before blocking and scoring;
/// every comparison then reads these fields and never re-normalises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    pub(crate) dataset: u16,
    pub(crate) given: Option<Name>,
    pub(crate) family: Option<Name>,
    pub(crate) dob: Option<DateParts>,
    pub(crate) emails: Vec<String>,
    pub(crate) phones: Vec<String>,
    /// `(id name, value)`, sorted, values upper case without separators.
    pub(crate) external_ids: Vec<(Text, Text)>,
    pub(crate) street_number: Option<Text>,
    pub(crate) street: Option<Text>,
    /// Every line of the street address, for when one side has no street name.
    pub(crate) street_full: Option<Text>,
    pub(crate) city: Option<Text>,
    pub(crate) postcode: Option<Text>,
    pub(crate) country: Option<Text>,
    pub(crate) org: Option<Text>,
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
        let external_ids = attrs
            .external_ids
            .iter()
            .filter_map(|(k, v)| {
                let v: String = v
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .flat_map(char::to_uppercase)
                    .collect();
                (!v.is_empty()).then(|| (Text::new(&k.trim().to_lowercase()), Text::new(&v)))
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
        Prepared {
            dataset: 0,
            given: name.given.map(|t| Name::new(t, opts.nicknames)),
            family: name.family.map(|t| Name::new(t, false)),
            dob: attrs
                .date_of_birth
                .as_deref()
                .and_then(|d| normalize::date_lenient(d, opts.day_first)),
            emails,
            phones,
            external_ids,
            street_number: street
                .as_ref()
                .and_then(|s| s.number.as_deref().map(Text::new)),
            street_full: street.as_ref().and_then(|s| {
                let parts: Vec<&str> = [&s.number, &s.name, &s.extra]
                    .into_iter()
                    .filter_map(|p| p.as_deref())
                    .collect();
                (!parts.is_empty()).then(|| Text::new(&parts.join(" ")))
            }),
            street: street.and_then(|s| s.name).map(Text::from),
            city: folded(&attrs.city).map(Text::from),
            postcode: attrs
                .postcode
                .as_deref()
                .and_then(normalize::postcode)
                .map(Text::from),
            country: folded(&attrs.country).map(Text::from),
            org: org.map(Text::from),
        }
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
        let list = |v: &[String]| (!v.is_empty()).then(|| v.join("; "));
        match attribute {
            Attribute::GivenName => self.given.as_ref().map(|n| n.text.to_string()),
            Attribute::FamilyName => self.family.as_ref().map(|n| n.text.to_string()),
            Attribute::DateOfBirth => self.dob.map(|d| d.key()),
            Attribute::Email => list(&self.emails),
            Attribute::Phone => list(&self.phones),
            Attribute::ExternalId => (!self.external_ids.is_empty()).then(|| {
                self.external_ids
                    .iter()
                    .map(|(k, v)| format!("{}={}", &**k, &**v))
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Attribute::StreetNumber => owned(&self.street_number),
            Attribute::Street => owned(&self.street).or_else(|| owned(&self.street_full)),
            Attribute::City => owned(&self.city),
            Attribute::Postcode => owned(&self.postcode),
            Attribute::Country => owned(&self.country),
            Attribute::OrgName => owned(&self.org),
        }
    }

    /// The value whose frequency adjusts an exact match on `attribute`.
    pub(crate) fn tf_value(&self, attribute: Attribute) -> Option<&str> {
        match attribute {
            Attribute::GivenName => self.given.as_ref().map(|n| &*n.text),
            Attribute::FamilyName => self.family.as_ref().map(|n| &*n.text),
            Attribute::StreetNumber => self.street_number.as_deref(),
            Attribute::City => self.city.as_deref(),
            Attribute::Postcode => self.postcode.as_deref(),
            _ => None,
        }
    }
}

fn owned(t: &Option<Text>) -> Option<String> {
    t.as_deref().map(str::to_string)
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
        assert!(!p.given.as_ref().unwrap().nick.is_empty());
        assert_eq!(p.value(Attribute::Email).as_deref(), Some("plee@gmail.com"));
        assert_eq!(p.value(Attribute::Phone).as_deref(), Some("+447700900123"));
        assert_eq!(p.value(Attribute::StreetNumber).as_deref(), Some("12"));
        assert_eq!(p.value(Attribute::Street).as_deref(), Some("high street"));
        assert_eq!(p.street_full.as_deref(), Some("12 high street flat 2"));
        let long = "a street name longer than the inline space";
        assert_eq!(&*Text::new(long), long);
        assert_eq!(Text::new("").as_bytes(), b"");
        assert_eq!(p.value(Attribute::City).as_deref(), Some("lond0n"));
        assert_eq!(p.value(Attribute::Postcode).as_deref(), Some("SW1A1AA"));
        assert_eq!(p.value(Attribute::DateOfBirth).as_deref(), Some("20000229"));
        assert_eq!(p.value(Attribute::OrgName).as_deref(), Some("acme widgets"));
        assert_eq!(
            p.value(Attribute::ExternalId).as_deref(),
            Some("loyalty=AB12")
        );
        assert_eq!(p.given.as_ref().unwrap().initial(), Some('p'));
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
                let bound = Text::new(a)
                    .letters
                    .shared_bound(Text::new(b).letters)
                    .unwrap();
                assert!(bound >= shared(a, b), "{a:?} {b:?}");
            }
        }
        assert_eq!(
            Text::new("zoë")
                .letters
                .shared_bound(Text::new("zoe").letters),
            None
        );
        assert_eq!(Text::new(&"a".repeat(70)).letters, Letters::UNKNOWN);
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
