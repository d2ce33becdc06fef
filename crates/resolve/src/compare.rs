//! Graded comparison of two prepared records, attribute by attribute.
//!
//! Each attribute compares to one of a few *levels*, from `exact` (always
//! level 0) down to `else`, or to [`MISSING`] when either side lacks it. A
//! missing value is no evidence either way, so it carries no weight; a
//! mismatch is evidence against. The levels of all attributes form the
//! comparison [`Vector`] that the model turns into a match weight.

use serde::{Deserialize, Serialize};

use crate::normalize::{DateParts, intersects};
use crate::record::{Field, NameRef, Prepared, TextRef, same_bytes};

/// The attributes kith compares, in the order of a [`Vector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    GivenName,
    FamilyName,
    DateOfBirth,
    Email,
    Phone,
    ExternalId,
    StreetNumber,
    Street,
    City,
    Postcode,
    Country,
    OrgName,
}

/// How many attributes a [`Vector`] holds.
pub const N_ATTRIBUTES: usize = 12;

/// The level of an attribute that one or both records lack.
pub const MISSING: u8 = u8::MAX;

/// One level per attribute, in the order of [`Attribute::ALL`].
pub type Vector = [u8; N_ATTRIBUTES];

const NAME_LEVELS: &[&str] = &[
    "exact", "nickname", "jw_0.92", "jw_0.88", "jw_0.70", "phonetic", "else",
];
const DATE_LEVELS: &[&str] = &[
    "exact",
    "day_month_swapped",
    "month_day",
    "one_edit",
    "within_year",
    "else",
];
const IDENTIFIER_LEVELS: &[&str] = &["exact", "one_edit", "else"];
const TEXT_LEVELS: &[&str] = &["exact", "jw_0.90", "jw_0.70", "else"];
const EXACT_LEVELS: &[&str] = &["exact", "else"];

impl Attribute {
    pub const ALL: [Attribute; N_ATTRIBUTES] = [
        Attribute::GivenName,
        Attribute::FamilyName,
        Attribute::DateOfBirth,
        Attribute::Email,
        Attribute::Phone,
        Attribute::ExternalId,
        Attribute::StreetNumber,
        Attribute::Street,
        Attribute::City,
        Attribute::Postcode,
        Attribute::Country,
        Attribute::OrgName,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Attribute::GivenName => "given_name",
            Attribute::FamilyName => "family_name",
            Attribute::DateOfBirth => "date_of_birth",
            Attribute::Email => "email",
            Attribute::Phone => "phone",
            Attribute::ExternalId => "external_id",
            Attribute::StreetNumber => "street_number",
            Attribute::Street => "street",
            Attribute::City => "city",
            Attribute::Postcode => "postcode",
            Attribute::Country => "country",
            Attribute::OrgName => "org_name",
        }
    }

    /// Labels of the levels, best first; level 0 is always `exact`.
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Attribute::GivenName | Attribute::FamilyName => NAME_LEVELS,
            Attribute::DateOfBirth => DATE_LEVELS,
            Attribute::Email | Attribute::Phone | Attribute::ExternalId | Attribute::Postcode => {
                IDENTIFIER_LEVELS
            }
            Attribute::Street | Attribute::City | Attribute::OrgName => TEXT_LEVELS,
            Attribute::StreetNumber | Attribute::Country => EXACT_LEVELS,
        }
    }

    /// Whether an exact match is weighed by how common the value is: a
    /// shared "smith" says less than a shared "zaborowski".
    pub fn term_frequency(self) -> bool {
        matches!(
            self,
            Attribute::GivenName
                | Attribute::FamilyName
                | Attribute::StreetNumber
                | Attribute::City
                | Attribute::Postcode
        )
    }
}

/// Compares two records on every attribute.
pub fn compare(a: &Prepared, b: &Prepared) -> Vector {
    compare_full(a, b).0
}

/// [`compare`], and whether the names were compared crosswise.
pub(crate) fn compare_full(a: &Prepared, b: &Prepared) -> (Vector, bool) {
    compare_with(a, b, None)
}

/// [`compare`] against a record read once ([`Side`]) whose Jaro–Winkler
/// tables are built already ([`Kept`]): for many records compared with the
/// same one.
pub(crate) fn compare_kept(a: &Prepared, b: &Side, kept: &Kept) -> Vector {
    compare_sides(&Side::of(a), b, Some(kept)).0
}

#[inline(always)]
fn compare_with(a: &Prepared, b: &Prepared, kept: Option<&Kept>) -> (Vector, bool) {
    compare_sides(&Side::of(a), &Side::of(b), kept)
}

/// A record's values as the comparisons read them, looked up once.
#[derive(Clone, Copy)]
pub(crate) struct Side<'a> {
    record: &'a Prepared,
    given: Option<NameRef<'a>>,
    family: Option<NameRef<'a>>,
    street_number: Option<TextRef<'a>>,
    street: Option<TextRef<'a>>,
    street_full: Option<TextRef<'a>>,
    city: Option<TextRef<'a>>,
    postcode: Option<TextRef<'a>>,
    country: Option<TextRef<'a>>,
    org: Option<TextRef<'a>>,
    /// The external id, when the record has exactly one (most do).
    only_id: Option<(&'a [u8], &'a [u8])>,
}

impl<'a> Side<'a> {
    #[inline(always)]
    pub(crate) fn of(record: &'a Prepared) -> Self {
        Side {
            record,
            given: record.given(),
            family: record.family(),
            street_number: record.field(Field::StreetNumber),
            street: record.field(Field::Street),
            street_full: record.field(Field::StreetFull),
            city: record.field(Field::City),
            postcode: record.field(Field::Postcode),
            country: record.field(Field::Country),
            org: record.field(Field::Org),
            only_id: (record.id_count() == 1).then(|| record.external_id(0)),
        }
    }
}

#[inline(always)]
fn compare_sides(a: &Side, b: &Side, kept: Option<&Kept>) -> (Vector, bool) {
    let table = |f: Field| kept.and_then(|k| k.table(f));
    let text_level_of = |f: Field| move |x, y| text_level(x, y, table(f));
    let (ra, rb) = (a.record, b.record);
    let mut v = [MISSING; N_ATTRIBUTES];
    let (given, family, swapped) = names(a, b, table(Field::Given), table(Field::Family));
    v[Attribute::GivenName.index()] = given;
    v[Attribute::FamilyName.index()] = family;
    v[Attribute::DateOfBirth.index()] = opt(ra.dob, rb.dob, date_level);
    v[Attribute::Email.index()] = identifier_lists(ra.emails(), rb.emails());
    v[Attribute::Phone.index()] = identifier_lists(ra.phones(), rb.phones());
    v[Attribute::ExternalId.index()] = match (a.only_id, b.only_id) {
        (Some((ka, va)), Some((kb, vb))) if same(ka, kb) => identifier_level(va, vb),
        (Some(_), Some(_)) => MISSING,
        _ => external_ids(ra, rb),
    };
    v[Attribute::StreetNumber.index()] = opt(a.street_number, b.street_number, |x, y| {
        u8::from(!x.same(&y))
    });
    v[Attribute::Street.index()] = match (a.street, b.street) {
        (Some(x), Some(y)) => text_level(x, y, table(Field::Street)),
        _ => opt(
            a.street_full,
            b.street_full,
            text_level_of(Field::StreetFull),
        ),
    };
    v[Attribute::City.index()] = opt(a.city, b.city, text_level_of(Field::City));
    v[Attribute::Postcode.index()] = opt(a.postcode, b.postcode, |x, y| {
        identifier_level(x.as_bytes(), y.as_bytes())
    });
    v[Attribute::Country.index()] = opt(a.country, b.country, |x, y| u8::from(!x.same(&y)));
    v[Attribute::OrgName.index()] = opt(a.org, b.org, text_level_of(Field::Org));
    (v, swapped)
}

/// Jaro–Winkler's table ([`jw_ascii`]) for each text of one record, the
/// second of a run of pairs: built once for the run instead of once a pair.
pub(crate) struct Kept {
    /// By [`Field::letters_slot`]: the fields compared by Jaro–Winkler.
    tables: Box<[[u64; 128]; 6]>,
    /// Which tables hold a value.
    filled: [bool; 6],
}

impl Kept {
    pub(crate) fn new() -> Self {
        Kept {
            tables: Box::new([[0; 128]; 6]),
            filled: [false; 6],
        }
    }

    /// The field's table, for the record last [`fill`](Kept::fill)ed; None
    /// where [`jw_ascii`] is not used (no value, not ASCII, too long).
    #[inline]
    fn table(&self, field: Field) -> Option<&[u64; 128]> {
        let k = field.letters_slot()?;
        self.filled[k].then(|| &self.tables[k])
    }

    fn fields() -> impl Iterator<Item = (usize, Field)> {
        [
            Field::Given,
            Field::Family,
            Field::Street,
            Field::StreetFull,
            Field::City,
            Field::Org,
        ]
        .into_iter()
        .filter_map(|f| Some((f.letters_slot()?, f)))
    }

    /// Values that have a table: ASCII, one to 64 bytes.
    fn kept_value(b: &Prepared, f: Field) -> Option<&[u8]> {
        b.field(f)
            .map(|t| t.as_bytes())
            .filter(|y| !y.is_empty() && y.len() <= 64 && y.is_ascii())
    }

    /// Sets the tables for `b`; they must be clear.
    pub(crate) fn fill(&mut self, b: &Prepared) {
        for (k, f) in Kept::fields() {
            if let Some(y) = Kept::kept_value(b, f) {
                for (j, &d) in y.iter().enumerate() {
                    self.tables[k][usize::from(d & 127)] |= 1 << j;
                }
                self.filled[k] = true;
            }
        }
    }

    /// Clears what [`fill`](Kept::fill) set for `b`.
    pub(crate) fn clear(&mut self, b: &Prepared) {
        for (k, f) in Kept::fields() {
            if let Some(y) = Kept::kept_value(b, f) {
                for &d in y {
                    self.tables[k][usize::from(d & 127)] = 0;
                }
            }
            self.filled[k] = false;
        }
    }
}

/// Whether the names are compared crosswise, given against family (see
/// [`names`]).
#[cfg(test)]
pub(crate) fn names_swapped(a: &Prepared, b: &Prepared) -> bool {
    names(&Side::of(a), &Side::of(b), None, None).2
}

/// The levels of the given and family names, and whether they were
/// compared crosswise. Swapping the two fields is a common data-entry
/// error, often with a typo or a changed family name on top; so when
/// neither name agrees exactly the straight way, the names are compared
/// crosswise too, and crosswise wins when it agrees at least as well on
/// both names and better on one.
#[inline(always)]
fn names(
    a: &Side,
    b: &Side,
    given_table: Option<&[u64; 128]>,
    family_table: Option<&[u64; 128]>,
) -> (u8, u8, bool) {
    let (ag, af, bg, bf) = (a.given, a.family, b.given, b.family);
    let straight = (
        opt(ag, bg, |x, y| name_level(x, y, given_table)),
        opt(af, bf, |x, y| name_level(x, y, family_table)),
    );
    if let (Some(ag), Some(af), Some(bg), Some(bf)) = (ag, af, bg, bf)
        && straight.0 != 0
        && straight.1 != 0
    {
        // The second crosswise level is needed only if the first can win.
        let cross_given = name_level(ag, bf, family_table);
        if cross_given <= straight.0 {
            let cross = (cross_given, name_level(af, bg, given_table));
            if cross.1 <= straight.1 && cross != straight {
                return (cross.0, cross.1, true);
            }
        }
    }
    (straight.0, straight.1, false)
}

fn opt<T>(a: Option<T>, b: Option<T>, f: impl FnOnce(T, T) -> u8) -> u8 {
    match (a, b) {
        (Some(x), Some(y)) => f(x, y),
        _ => MISSING,
    }
}

#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    same_bytes(a, b)
}

/// `table`: [`Kept`]'s table of `b`, if built. Inlined into its four
/// calls per pair, which saves more than the call costs.
#[inline(always)]
pub(crate) fn name_level(a: NameRef, b: NameRef, table: Option<&[u64; 128]>) -> u8 {
    if a.text.same(&b.text) {
        return 0;
    }
    // Family names carry no nickname groups: most calls skip the search.
    if !a.nick.is_empty() && !b.nick.is_empty() && intersects(a.nick, b.nick) {
        return 1;
    }
    let jw = jw_over_070(a.text, b.text, table);
    if jw >= 0.92 {
        2
    } else if jw >= 0.88 {
        3
    } else if jw >= 0.70 {
        4
    } else if a.soundex.is_some() && a.soundex == b.soundex {
        5
    } else {
        6
    }
}

pub(crate) const DATE_EXACT: u8 = 0;
pub(crate) const DATE_SWAPPED: u8 = 1;
pub(crate) const DATE_MONTH_DAY: u8 = 2;
pub(crate) const DATE_ONE_EDIT: u8 = 3;
pub(crate) const DATE_WITHIN_YEAR: u8 = 4;
pub(crate) const DATE_ELSE: u8 = 5;

pub(crate) fn date_level(a: DateParts, b: DateParts) -> u8 {
    if a == b {
        return DATE_EXACT;
    }
    let swapped = a.month == b.day && a.day == b.month;
    match (a.year, b.year) {
        (Some(ya), Some(yb)) => {
            if ya == yb && swapped {
                DATE_SWAPPED
            } else if one_edit_apart(a, b) {
                DATE_ONE_EDIT
            } else if ya.abs_diff(yb) <= 2
                // Three years apart are two whole years apart, over 366 days.
                && matches!((a.days(), b.days()), (Some(x), Some(y)) if (x - y).abs() <= 366)
            {
                DATE_WITHIN_YEAR
            } else {
                DATE_ELSE
            }
        }
        // A birthday without a year can only agree on the month and day.
        _ if a.month == b.month && a.day == b.day => DATE_MONTH_DAY,
        _ if swapped => DATE_SWAPPED,
        _ => DATE_ELSE,
    }
}

/// Whether the `YYYYMMDD` forms of two dates differ by one keying error:
/// one digit changed, or two neighbouring digits swapped (`1918`, `1981`).
fn one_edit_apart(a: DateParts, b: DateParts) -> bool {
    // Year, month and day all different are three digits at least: most
    // pairs in training, told without the digits.
    let year = |d: DateParts| d.year.unwrap_or(0) % 10_000;
    if year(a) != year(b) && a.month != b.month && a.day != b.day {
        return false;
    }
    fn digits(d: DateParts) -> [u8; 8] {
        let y = d.year.unwrap_or(0);
        let digit = |n: u16| (n % 10) as u8;
        [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            d.month / 10,
            d.month % 10,
            d.day / 10,
            d.day % 10,
        ]
    }
    let (x, y) = (digits(a), digits(b));
    // The first two positions that differ, and how many do: no list, as
    // this runs for every pair in training.
    let (mut first, mut second, mut n) = (0, 0, 0);
    for k in 0..8 {
        if x[k] != y[k] {
            match n {
                0 => first = k,
                1 => second = k,
                _ => return false,
            }
            n += 1;
        }
    }
    match n {
        1 => true,
        2 => second == first + 1 && x[first] == y[second] && x[second] == y[first],
        _ => false,
    }
}

#[inline(always)]
fn identifier_level(a: &[u8], b: &[u8]) -> u8 {
    // Most ids and postcodes compared fit a word (see `one_edit_bytes`).
    if a.len() == b.len()
        && let (Some(x), Some(y)) = (ascii_word(a), ascii_word(b))
    {
        match differing_bytes(x ^ y) {
            0 => return 0,
            1 => return 1,
            2 => {}
            _ => return 2,
        }
    }
    if same(a, b) {
        0
    } else if one_edit_bytes(a, b) {
        1
    } else {
        2
    }
}

fn identifier_lists<'a>(
    a: impl Iterator<Item = &'a [u8]>,
    b: impl Iterator<Item = &'a [u8]> + Clone,
) -> u8 {
    let mut best = MISSING;
    for x in a {
        for y in b.clone() {
            best = best.min(identifier_level(x, y));
        }
    }
    best
}

/// The best level over the ids of one name the two records both carry.
fn external_ids(a: &Prepared, b: &Prepared) -> u8 {
    let mut best = MISSING;
    for x in 0..a.id_count() {
        let (ka, va) = a.external_id(x);
        for y in 0..b.id_count() {
            let (kb, vb) = b.external_id(y);
            if same(ka, kb) {
                best = best.min(identifier_level(va, vb));
            }
        }
    }
    best
}

#[inline(always)]
fn text_level(a: TextRef, b: TextRef, table: Option<&[u64; 128]>) -> u8 {
    if a.same(&b) {
        return 0;
    }
    let jw = jw_over_070(a, b, table);
    if jw >= 0.90 {
        1
    } else if jw >= 0.70 {
        2
    } else {
        3
    }
}

/// Jaro–Winkler when it may reach 0.7, else 0. Most pairs of different
/// people share too few letters to get there, which the precomputed letter
/// summaries show in a few instructions, against Jaro's matching window.
/// `table`, where given, is [`Kept`]'s table of `b`.
#[inline(always)]
fn jw_over_070(a: TextRef, b: TextRef, table: Option<&[u64; 128]>) -> f64 {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if let Some(shared) = a.letters.shared_bound(b.letters) {
        if x.is_empty() || y.is_empty() {
            return jw_bytes(x, y);
        }
        // Jaro matches are shared bytes; below 0.7 Winkler adds nothing.
        let m = (shared as usize).min(x.len().min(y.len()));
        if below_070(m, x.len(), y.len()) {
            return 0.0;
        }
        // A summary exists only for ASCII, so the check for it is done.
        if x.len() <= 64 && y.len() <= 64 {
            return match table {
                Some(t) => jaro_winkler_with::<true>(x, y, |c| t[usize::from(c & 127)]),
                None => jw_ascii_floor(x, y),
            };
        }
    }
    jw_bytes(x, y)
}

/// The bound above is inlined where the levels are cut; the fifth of
/// pairs that pass it call this.
#[inline(never)]
fn jw_ascii_floor(x: &[u8], y: &[u8]) -> f64 {
    jw_ascii::<true>(x, y)
}

/// Whether Jaro with `m` matches and no transposition, `(m/x + m/y + 1)/3`,
/// stays below 0.7 in floating point — the bound [`jw_over_070`] skips by.
/// In integers, `10·m·(x + y) < 11·x·y`: two divisions fewer, run millions
/// of times. The two sides differ by at least one unless the bound is 0.7
/// exactly, and then the float decides as before; otherwise the gap,
/// at least `1/(30·x·y)`, dwarfs any rounding, so both forms agree.
#[inline]
fn below_070(m: usize, x: usize, y: usize) -> bool {
    // Below 2^28 bytes (every value there is) the products fit in 64 bits.
    const SMALL: usize = 1 << 28;
    if m <= x.min(y) && x < SMALL && y < SMALL {
        let (m, x, y) = (m as u64, x as u64, y as u64);
        let (lhs, rhs) = (10 * m * (x + y), 11 * x * y);
        if lhs != rhs {
            return lhs < rhs;
        }
    }
    let (m, x, y) = (m as f64, x as f64, y as f64);
    (m / x + m / y + 1.0) / 3.0 < 0.7
}

/// Jaro–Winkler similarity (prefix scale 0.1, prefix up to 4, boost above
/// 0.7), equal to `strsim::jaro_winkler`. Short ASCII strings, nearly all
/// names and addresses, take a path without allocation: this runs a million
/// times while the model is trained.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    jw_bytes(a.as_bytes(), b.as_bytes())
}

/// [`jaro_winkler`] of the UTF-8 bytes of two strings.
fn jw_bytes(x: &[u8], y: &[u8]) -> f64 {
    if !(x.is_ascii() && y.is_ascii() && x.len() <= 64 && y.len() <= 64) {
        let text = |b| std::str::from_utf8(b).unwrap_or_default();
        return strsim::jaro_winkler(text(x), text(y));
    }
    jw_ascii::<false>(x, y)
}

/// [`jaro_winkler`] of ASCII strings of at most 64 bytes; with `FLOOR`,
/// 0 instead of any value below 0.7 that the matches alone show (all that
/// [`jw_over_070`]'s levels need).
fn jw_ascii<const FLOOR: bool>(x: &[u8], y: &[u8]) -> f64 {
    if x.is_empty() && y.is_empty() {
        return 1.0;
    }
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    // Where each byte occurs in y, so a match is found with bit operations
    // instead of scanning the window. The table is the thread's own and
    // kept clear between calls: setting and clearing only y's bytes costs
    // less than clearing a kilobyte for every pair.
    POSITIONS.with_borrow_mut(|positions| {
        for (j, &d) in y.iter().enumerate() {
            positions[usize::from(d & 127)] |= 1 << j;
        }
        let jw = jaro_winkler_with::<FLOOR>(x, y, |c| positions[usize::from(c & 127)]);
        for &d in y {
            positions[usize::from(d & 127)] = 0;
        }
        jw
    })
}

thread_local! {
    /// [`jw_ascii`]'s table: bit `j` of entry `c` is set when `y[j] == c`.
    /// All zero outside a call.
    static POSITIONS: std::cell::RefCell<[u64; 128]> = const { std::cell::RefCell::new([0; 128]) };
}

/// Jaro–Winkler given where each byte of `x` occurs in `y` (a bit per position).
/// With `FLOOR`, 0 when the matches show that Jaro stays below 0.7.
#[inline]
fn jaro_winkler_with<const FLOOR: bool>(x: &[u8], y: &[u8], positions: impl Fn(u8) -> u64) -> f64 {
    let window = (x.len().max(y.len()) / 2).saturating_sub(1);
    let (mut fx, mut fy) = (0u64, 0u64);
    let mut matches = 0usize;
    // The window of x[i] in y, bits lo..hi, kept as its two ends moving up
    // one bit a step: `upto` is bits 0..hi, `below` bits 0..lo.
    let all_of_y = u64::MAX >> (64 - y.len());
    let mut upto = (u64::MAX >> (63 - window.min(63))) & all_of_y;
    let mut below = 0u64;
    for (i, &c) in x.iter().enumerate() {
        if i > window {
            below = below << 1 | 1;
        }
        let in_window = upto & !below;
        if in_window == 0 {
            break;
        }
        let free = positions(c) & in_window & !fy;
        if free != 0 {
            fx |= 1 << i;
            fy |= free & free.wrapping_neg();
            matches += 1;
        }
        upto = (upto << 1 | 1) & all_of_y;
    }
    if matches == 0 || (FLOOR && below_070(matches, x.len(), y.len())) {
        return 0.0;
    }
    // The k-th matched byte of x against the k-th of y.
    let mut transpositions = 0usize;
    let (mut left, mut right) = (fx, fy);
    while left != 0 {
        let (i, j) = (left.trailing_zeros(), right.trailing_zeros());
        left &= left - 1;
        right &= right - 1;
        transpositions += usize::from(x[i as usize] != y[j as usize]);
    }
    let m = matches as f64;
    let jaro =
        (m / x.len() as f64 + m / y.len() as f64 + (m - (transpositions / 2) as f64) / m) / 3.0;
    if jaro <= 0.7 {
        return jaro;
    }
    let prefix = x.iter().zip(y).take(4).take_while(|(p, q)| p == q).count();
    jaro + 0.1 * prefix as f64 * (1.0 - jaro)
}

/// Whether `b` is `a` with at most one character inserted, deleted,
/// substituted, or two neighbours swapped (optimal string alignment ≤ 1): the
/// typos of a keyed-in identifier.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    one_edit_bytes(a.as_bytes(), b.as_bytes())
}

pub(crate) fn one_edit_bytes(a: &[u8], b: &[u8]) -> bool {
    // Postcodes and ids of equal length, in eight bytes: count the bytes
    // that differ, all at once. None or one is an edit; three or more are
    // not; two may be a swap, which the general path tells.
    if a.len() == b.len()
        && let (Some(x), Some(y)) = (ascii_word(a), ascii_word(b))
    {
        match differing_bytes(x ^ y) {
            0 | 1 => return true,
            2 => {}
            _ => return false,
        }
    }
    if same(a, b) {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        // Identifiers are compared a million times in training: no allocation.
        one_edit_slices(a, b)
    } else {
        let chars =
            |b| -> Vec<char> { std::str::from_utf8(b).unwrap_or_default().chars().collect() };
        one_edit_slices(&chars(a), &chars(b))
    }
}

fn one_edit_slices<T: PartialEq>(x: &[T], y: &[T]) -> bool {
    let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
    let p = short.iter().zip(long).take_while(|(c, d)| c == d).count();
    match long.len() - short.len() {
        0 if p == short.len() => true,
        0 => {
            let swapped = p + 1 < short.len()
                && short[p] == long[p + 1]
                && short[p + 1] == long[p]
                && equal(&short[p + 2..], &long[p + 2..]);
            swapped || equal(&short[p + 1..], &long[p + 1..])
        }
        1 => equal(&short[p..], &long[p + 1..]),
        _ => false,
    }
}

/// Up to eight ASCII bytes in one word, the first lowest; None for longer or
/// other text (where one character may be several bytes).
#[inline]
fn ascii_word(s: &[u8]) -> Option<u64> {
    let n = s.len();
    let word = match (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        // Four bytes to eight: the first four and the last four, which
        // overlap in the same bytes when there are fewer than eight.
        (Some(first), Some(last)) if n <= 8 => {
            u64::from(u32::from_le_bytes(*first))
                | u64::from(u32::from_le_bytes(*last)) << (8 * (n - 4))
        }
        (None, _) => s
            .iter()
            .enumerate()
            .fold(0u64, |w, (k, &c)| w | u64::from(c) << (8 * k)),
        _ => return None,
    };
    (word & 0x8080_8080_8080_8080 == 0).then_some(word)
}

/// How many bytes of a word are not zero.
#[inline]
fn differing_bytes(x: u64) -> u32 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // A byte's top bit, or its low seven plus 0x7f (never carrying into the
    // next byte), sets bit 7 exactly when the byte is not zero.
    ((((x & LOW7) + LOW7) | x) & !LOW7).count_ones()
}

/// Slice equality written out: for the few bytes of an identifier, the
/// call into libc's `memcmp` that `==` makes costs more than comparing.
#[inline]
fn equal<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use kith_model::IdentityAttrs;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::normalize::NormalizeOptions;

    fn rec(given: &str, family: &str, dob: &str) -> Prepared {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Prepared::new(
            &IdentityAttrs {
                given_name: some(given),
                family_name: some(family),
                date_of_birth: some(dob),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        )
    }

    fn level(a: &Prepared, b: &Prepared, attr: Attribute) -> Option<&'static str> {
        let l = compare(a, b)[attr.index()];
        (l != MISSING).then(|| attr.levels()[l as usize])
    }

    #[test]
    fn jaro_winkler_matches_strsim() {
        let mut rng = StdRng::seed_from_u64(7);
        // Digits and p–y share low bits: both table paths are exercised.
        let alphabet = b"abpq 01";
        for _ in 0..5000 {
            let word = |rng: &mut StdRng| {
                let n = rng.random_range(0..12);
                (0..n)
                    .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                    .collect::<String>()
            };
            let (a, b) = (word(&mut rng), word(&mut rng));
            let (ours, theirs) = (jaro_winkler(&a, &b), strsim::jaro_winkler(&a, &b));
            assert!(
                (ours - theirs).abs() < 1e-12,
                "{a:?} {b:?}: {ours} {theirs}"
            );
        }
        assert!((jaro_winkler("martha", "marhta") - 0.961).abs() < 1e-3);
        assert!((jaro_winkler("zoë", "zoe") - strsim::jaro_winkler("zoë", "zoe")).abs() < 1e-12);
    }

    /// Random text over a few letters (so that pairs are often close), a
    /// space and digits (which share a table slot with `p`–`y`).
    fn word(rng: &mut StdRng, alphabet: &[u8], len: std::ops::Range<usize>) -> String {
        let n = rng.random_range(len);
        (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    #[test]
    fn the_integer_bound_decides_as_the_float_one() {
        for x in 1..=64usize {
            for y in 1..=64usize {
                for m in 0..=x.min(y) {
                    let (mf, xf, yf) = (m as f64, x as f64, y as f64);
                    let float = (mf / xf + mf / yf + 1.0) / 3.0 < 0.7;
                    assert_eq!(below_070(m, x, y), float, "m {m} x {x} y {y}");
                }
            }
        }
    }

    #[test]
    fn fast_jaro_winkler_levels_equal_strsim_levels() {
        // Levels as name_level and text_level cut them, from the fast path
        // (letter bound, the early stop on matches, the thread's table) and
        // from strsim; and the full value where no early stop is allowed.
        let cut = |jw: f64| [0.92, 0.90, 0.88, 0.70].map(|t| jw >= t);
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..30_000 {
            let (alphabet, len): (&[u8], _) = if round % 2 == 0 {
                (b"aeinrst ", 1..24)
            } else {
                (b"abpqy019 ", 1..64)
            };
            let a = word(&mut rng, alphabet, len.clone());
            let mut b = a.clone().into_bytes();
            // Half the pairs are a few edits apart, to reach the high levels.
            if round % 4 < 2 {
                b = word(&mut rng, alphabet, len).into_bytes();
            } else {
                for _ in 0..rng.random_range(0..4) {
                    if !b.is_empty() {
                        let k = rng.random_range(0..b.len());
                        b[k] = alphabet[rng.random_range(0..alphabet.len())];
                    }
                }
            }
            let b = String::from_utf8(b).unwrap();
            let slow = strsim::jaro_winkler(&a, &b);
            let fast = jw_over_070(TextRef::new(&a), TextRef::new(&b), None);
            assert_eq!(cut(fast), cut(slow), "{a:?} {b:?}: {fast} {slow}");
            assert!((jaro_winkler(&a, &b) - slow).abs() < 1e-12, "{a:?} {b:?}");
        }
    }

    /// `one_edit_slices` alone: the definition, without the word-at-once path.
    fn one_edit_plain(a: &str, b: &str) -> bool {
        let (x, y): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        one_edit_slices(&x, &y)
    }

    #[test]
    fn the_word_at_once_edit_check_agrees_with_the_plain_one() {
        let mut rng = StdRng::seed_from_u64(12);
        for round in 0..50_000 {
            let alphabet: &[u8] = if round % 3 == 0 { b"0123" } else { b"01" };
            let a = word(&mut rng, alphabet, 0..10);
            let mut b: Vec<u8> = a.clone().into_bytes();
            match rng.random_range(0..4) {
                0 => b = word(&mut rng, alphabet, 0..10).into_bytes(),
                1 if b.len() > 1 => {
                    let k = rng.random_range(0..b.len() - 1);
                    b.swap(k, k + 1);
                }
                _ => {
                    for _ in 0..rng.random_range(0..3) {
                        if !b.is_empty() {
                            let k = rng.random_range(0..b.len());
                            b[k] = alphabet[rng.random_range(0..alphabet.len())];
                        }
                    }
                }
            }
            let b = String::from_utf8(b).unwrap();
            assert_eq!(
                within_one_edit(&a, &b),
                one_edit_plain(&a, &b),
                "{a:?} {b:?}"
            );
        }
        // Not ASCII: one character of two bytes changed is one edit.
        assert!(within_one_edit("zoë1", "zoé1"));
        assert!(!within_one_edit("zoë1", "zéé1"));
    }

    /// The date levels as defined, without the shortcuts of `date_level`.
    fn date_level_plain(a: DateParts, b: DateParts) -> u8 {
        fn digits(d: DateParts) -> [u8; 8] {
            let y = d.year.unwrap_or(0);
            let digit = |n: u16| (n % 10) as u8;
            [
                digit(y / 1000),
                digit(y / 100),
                digit(y / 10),
                digit(y),
                d.month / 10,
                d.month % 10,
                d.day / 10,
                d.day % 10,
            ]
        }
        let one_edit = {
            let (x, y) = (digits(a), digits(b));
            let differ: Vec<usize> = (0..8).filter(|&k| x[k] != y[k]).collect();
            match differ[..] {
                [_] => true,
                [p, q] => q == p + 1 && x[p] == y[q] && x[q] == y[p],
                _ => false,
            }
        };
        let swapped = a.month == b.day && a.day == b.month;
        if a == b {
            DATE_EXACT
        } else if a.year.is_some() && b.year.is_some() {
            if a.year == b.year && swapped {
                DATE_SWAPPED
            } else if one_edit {
                DATE_ONE_EDIT
            } else if matches!((a.days(), b.days()), (Some(x), Some(y)) if (x - y).abs() <= 366) {
                DATE_WITHIN_YEAR
            } else {
                DATE_ELSE
            }
        } else if a.month == b.month && a.day == b.day {
            DATE_MONTH_DAY
        } else if swapped {
            DATE_SWAPPED
        } else {
            DATE_ELSE
        }
    }

    #[test]
    fn date_shortcuts_give_the_defined_levels() {
        let mut rng = StdRng::seed_from_u64(13);
        let date = |rng: &mut StdRng| DateParts {
            year: (rng.random_range(0..10) > 0).then(|| {
                // Mostly near each other, some far, some past 9999.
                [1979, 1980, 1981, 1982, 1983, 1918, 1981, 11980][rng.random_range(0..8)]
                    + rng.random_range(0..2)
            }),
            month: rng.random_range(1..13),
            day: [1, 2, 10, 12, 21, 28, 29, 30, 31][rng.random_range(0..9)],
        };
        for _ in 0..200_000 {
            let (a, b) = (date(&mut rng), date(&mut rng));
            assert_eq!(date_level(a, b), date_level_plain(a, b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn crosswise_names_as_defined() {
        // The crosswise names as the rule states it, computing every level.
        let plain = |a: &Prepared, b: &Prepared| {
            let (ag, af, bg, bf) = (a.given(), a.family(), b.given(), b.family());
            let level = |x, y| name_level(x, y, None);
            let straight = (opt(ag, bg, level), opt(af, bf, level));
            if let (Some(ag), Some(af), Some(bg), Some(bf)) = (ag, af, bg, bf)
                && straight.0 != 0
                && straight.1 != 0
            {
                let cross = (level(ag, bf), level(af, bg));
                if cross.0 <= straight.0 && cross.1 <= straight.1 && cross != straight {
                    return (cross.0, cross.1, true);
                }
            }
            (straight.0, straight.1, false)
        };
        let mut rng = StdRng::seed_from_u64(14);
        let some = [
            "ann", "anne", "lee", "leigh", "smith", "smyth", "bill", "william", "",
        ];
        let pick = |rng: &mut StdRng| some[rng.random_range(0..some.len())];
        for _ in 0..20_000 {
            let a = rec(pick(&mut rng), pick(&mut rng), "");
            let b = rec(pick(&mut rng), pick(&mut rng), "");
            let sides = (Side::of(&a), Side::of(&b));
            assert_eq!(
                names(&sides.0, &sides.1, None, None),
                plain(&a, &b),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn kept_tables_compare_as_fresh_ones() {
        // Records with every Jaro–Winkler field, some not ASCII or too long
        // for a table, each compared with the others through one `Kept`.
        let mut rng = StdRng::seed_from_u64(15);
        let text = |rng: &mut StdRng| match rng.random_range(0..8) {
            0 => String::new(),
            1 => "zoë street".into(),
            2 => "a".repeat(70),
            _ => word(rng, b"aeinrst ", 1..20),
        };
        let records: Vec<Prepared> = (0..60)
            .map(|_| {
                let some = |s: String| (!s.is_empty()).then_some(s);
                Prepared::new(
                    &IdentityAttrs {
                        given_name: some(text(&mut rng)),
                        family_name: some(text(&mut rng)),
                        street: some(text(&mut rng)),
                        city: some(text(&mut rng)),
                        org_name: some(text(&mut rng)),
                        ..Default::default()
                    },
                    &NormalizeOptions::default(),
                )
            })
            .collect();
        let mut kept = Kept::new();
        for b in &records {
            kept.fill(b);
            for a in &records {
                assert_eq!(
                    compare_kept(a, &Side::of(b), &kept),
                    compare(a, b),
                    "{a:?} {b:?}"
                );
            }
            kept.clear(b);
            assert!(kept.tables.iter().flatten().all(|&w| w == 0));
        }
    }

    #[test]
    fn the_shared_letter_bound_never_hides_a_close_pair() {
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..20_000 {
            let word = |rng: &mut StdRng| {
                let n = rng.random_range(1..10);
                (0..n)
                    .map(|_| (b'a' + rng.random_range(0..6u8)) as char)
                    .collect::<String>()
            };
            let (a, b) = (word(&mut rng), word(&mut rng));
            let jw = jaro_winkler(&a, &b);
            let over = jw_over_070(TextRef::new(&a), TextRef::new(&b), None);
            if jw >= 0.7 {
                assert_eq!(over, jw, "{a} {b}");
            } else {
                assert!(over < 0.7, "{a} {b}");
            }
        }
    }

    #[test]
    fn one_edit() {
        for (a, b) in [
            ("1234", "1234"),
            ("1234", "1244"),
            ("1234", "2134"),
            ("1234", "1243"),
            ("1234", "123"),
            ("1234", "01234"),
            ("", "a"),
            ("zoë", "zoe"),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("1234", "4321"),
            ("1234", "12"),
            ("1234", "1324x"),
            ("ab", "ba c"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    #[test]
    fn name_levels() {
        let r = |g: &str| rec(g, "x", "");
        let lv = |a: &str, b: &str| level(&r(a), &r(b), Attribute::GivenName);
        assert_eq!(lv("William", "william"), Some("exact"));
        assert_eq!(lv("Bill", "William"), Some("nickname"));
        assert_eq!(lv("Peggy", "Margaret"), Some("nickname"));
        assert_eq!(lv("jonathon", "jonathan"), Some("jw_0.92"));
        assert_eq!(lv("René", "rene"), Some("exact"));
        assert_eq!(lv("catherine", "kathryn"), Some("nickname"));
        assert_eq!(lv("smyth", "smith"), Some("jw_0.88"));
        assert_eq!(lv("ashcraft", "ashcroft"), Some("jw_0.92"));
        assert_eq!(lv("abc", "xyz"), Some("else"));
        assert_eq!(lv("", "xyz"), None);
        // Soundex agrees where Jaro–Winkler is below 0.7.
        assert_eq!(lv("lee", "law"), Some("phonetic"));
    }

    #[test]
    fn swapped_names_count_as_exact() {
        let a = rec("lee", "ann", "");
        let b = rec("ann", "lee", "");
        assert_eq!(level(&a, &b, Attribute::GivenName), Some("exact"));
        assert_eq!(level(&a, &b, Attribute::FamilyName), Some("exact"));
        assert!(names_swapped(&a, &b));
        let c = rec("ann", "ann", "");
        assert!(!names_swapped(&c, &c));
    }

    #[test]
    fn swapped_names_with_a_typo_or_a_new_family_name_compare_crosswise() {
        // Swapped, and the family name mistyped on one side.
        let a = rec("julius", "stanbury", "");
        let b = rec("tanbury", "julius", "");
        assert!(names_swapped(&a, &b));
        assert_eq!(level(&a, &b, Attribute::GivenName), Some("exact"));
        assert_eq!(level(&a, &b, Attribute::FamilyName), Some("jw_0.92"));
        // Swapped with a typo on both sides: still better crosswise on both.
        let c = rec("jlulius", "stanbury", "");
        assert!(names_swapped(&c, &b));
        // Swapped, and a new family name (marriage) on one side.
        let d = rec("desmond", "sula", "");
        let e = rec("sula", "frahn", "");
        assert!(names_swapped(&d, &e));
        assert_eq!(level(&d, &e, Attribute::FamilyName), Some("exact"));
        assert_eq!(level(&d, &e, Attribute::GivenName), Some("else"));
        // One name agreeing the straight way keeps the straight comparison.
        let f = rec("julius", "tanbury", "");
        assert!(!names_swapped(&a, &f));
        assert_eq!(level(&a, &f, Attribute::GivenName), Some("exact"));
        // Crosswise must be no worse on either name.
        let g = rec("lee", "lea", "");
        let h = rec("smith", "lee", "");
        assert!(!names_swapped(&g, &h), "lea/smith is worse than lea/lee");
        assert_eq!(level(&g, &h, Attribute::FamilyName), Some("jw_0.70"));
    }

    #[test]
    fn date_levels() {
        let lv =
            |a: &str, b: &str| level(&rec("a", "b", a), &rec("a", "b", b), Attribute::DateOfBirth);
        assert_eq!(lv("1980-03-05", "5 March 1980"), Some("exact"));
        assert_eq!(lv("1980-03-05", "1980-05-03"), Some("day_month_swapped"));
        assert_eq!(lv("1980-03-05", "1981-03-05"), Some("one_edit"));
        assert_eq!(lv("19800305", "19801305"), Some("one_edit"));
        assert_eq!(lv("19180701", "19810701"), Some("one_edit"));
        assert_eq!(lv("19180701", "19810702"), Some("else"));
        assert_eq!(lv("1980-03-05", "1980-09-28"), Some("within_year"));
        assert_eq!(lv("1980-03-05", "1990-07-15"), Some("else"));
        assert_eq!(lv("1980-03-05", "5 March"), Some("month_day"));
        assert_eq!(lv("1980-03-05", "3 May"), Some("day_month_swapped"));
        assert_eq!(lv("1980-03-05", "6 March"), Some("else"));
        assert_eq!(lv("2000-02-29", "29 February"), Some("month_day"));
        assert_eq!(lv("2000-02-29", "2001-03-01"), Some("within_year"));
        assert_eq!(lv("2000-02-29", ""), None);
        assert_eq!(lv("garbage", "2000-02-29"), None);
    }

    #[test]
    fn identifiers_and_addresses() {
        let r = |email: &str, street: &str, postcode: &str, id: &str| {
            let mut attrs = IdentityAttrs {
                emails: vec![email.into()],
                street: Some(street.into()),
                postcode: Some(postcode.into()),
                ..Default::default()
            };
            attrs.external_ids.insert("ssn".into(), id.into());
            Prepared::new(&attrs, &NormalizeOptions::default())
        };
        let a = r("ann@example.com", "8 Stanley St", "4223", "5304218");
        let b = r("ANN@example.com", "8 stanley street", "4233", "5304281");
        assert_eq!(level(&a, &b, Attribute::Email), Some("exact"));
        assert_eq!(level(&a, &b, Attribute::Street), Some("exact"));
        assert_eq!(level(&a, &b, Attribute::StreetNumber), Some("exact"));
        assert_eq!(level(&a, &b, Attribute::Postcode), Some("one_edit"));
        assert_eq!(level(&a, &b, Attribute::ExternalId), Some("one_edit"));
        assert_eq!(level(&a, &b, Attribute::Phone), None);
        let c = r("bob@example.com", "9 Stanly Street", "9999", "1");
        assert_eq!(level(&a, &c, Attribute::Email), Some("else"));
        assert_eq!(level(&a, &c, Attribute::Street), Some("jw_0.90"));
        assert_eq!(level(&a, &c, Attribute::StreetNumber), Some("else"));
        assert_eq!(level(&a, &c, Attribute::Postcode), Some("else"));
        // Ids of different names are not compared.
        let d = Prepared::new(
            &IdentityAttrs {
                external_ids: [("vat".to_string(), "5304218".to_string())].into(),
                ..Default::default()
            },
            &NormalizeOptions::default(),
        );
        assert_eq!(level(&a, &d, Attribute::ExternalId), None);
    }

    #[test]
    fn every_level_label_exists() {
        for a in Attribute::ALL {
            assert_eq!(a.levels()[0], "exact");
            assert_eq!(Attribute::ALL[a.index()], a);
        }
    }
}
