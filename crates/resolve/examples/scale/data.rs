//! Reading `gen_scale.py`'s CSV and truth into compact, index-based forms.
//!
//! A million records must fit beside the resolver in well under a gigabyte,
//! so the rows are streamed into [`Prepared`] records (the raw attributes are
//! dropped as soon as they are prepared), the `rec_id`s are kept in one
//! buffer, and the truth becomes pairs of record indices. Shared by the
//! `scale` and `incremental` examples.

// Each of the two users reads a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use kith_model::IdentityAttrs;
use kith_resolve::{NormalizeOptions, Prepared};

/// Record ids in one buffer, one offset each: a `Vec<String>` would cost an
/// allocation and 24 bytes of header per record.
#[derive(Default)]
pub struct Ids {
    text: String,
    ends: Vec<u32>,
}

impl Ids {
    pub fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

pub const COLUMNS: [&str; 11] = [
    "rec_id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
];

/// The FEBRL columns as kith's identifying attributes, mapped as in
/// `examples/febrl`: street = `street_number address_1, address_2`, city =
/// suburb, country = state, external id `soc_sec_id`.
pub fn attrs(f: &[&str; 11]) -> IdentityAttrs {
    let get = |k: usize| (!f[k].is_empty()).then(|| f[k].to_string());
    let line1 = match (f[3], f[4]) {
        ("", l) | (l, "") => l.to_string(),
        (n, s) => format!("{n} {s}"),
    };
    // A comma keeps address_2 a line of its own even when the first line is empty.
    let street = match (line1.as_str(), f[5]) {
        ("", "") => None,
        (l1, "") => Some(l1.to_string()),
        (l1, l2) => Some(format!("{l1}, {l2}")),
    };
    IdentityAttrs {
        given_name: get(1),
        family_name: get(2),
        street,
        city: get(6),
        postcode: get(7),
        country: get(8),
        date_of_birth: get(9),
        external_ids: get(10)
            .map(|v| BTreeMap::from([("soc_sec_id".to_string(), v)]))
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// Reads `path` (gen_scale's columns, no quoted fields) and prepares every
/// row, in file order. The file is read whole (a hundred megabytes for a
/// million records, freed before the resolver needs the most memory) and
/// its lines shared out among `threads`, which prepare them straight into
/// their places among the records.
pub fn load(path: &Path, threads: usize) -> Result<(Ids, Vec<Prepared>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
    if header.trim_end() != COLUMNS.join(",") {
        return Err(format!(
            "{}: unexpected header {header:?}, want {}",
            path.display(),
            COLUMNS.join(",")
        ));
    }
    let lines: Vec<&str> = body.lines().filter(|l| !l.is_empty()).collect();
    for (n, line) in lines.iter().enumerate() {
        let fields = line.bytes().filter(|&b| b == b',').count() + 1;
        if fields != COLUMNS.len() {
            return Err(format!(
                "{}: row {}: {fields} fields, want {}",
                path.display(),
                n + 1,
                COLUMNS.len()
            ));
        }
    }
    let opts = NormalizeOptions {
        default_region: "AU".into(),
        ..Default::default()
    };
    let mut records = vec![Prepared::default(); lines.len()];
    let prepare = |part: &[&str], out: &mut [Prepared]| {
        for (line, slot) in part.iter().zip(out) {
            let mut f = [""; 11];
            for (field, v) in f.iter_mut().zip(line.split(',')) {
                *field = v.trim();
            }
            *slot = Prepared::new(&attrs(&f), &opts);
        }
    };
    // Small pieces taken in turn, so that a core slowed by other work on
    // the machine does not hold the other back.
    let pieces = std::sync::Mutex::new(lines.chunks(4096).zip(records.chunks_mut(4096)));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let next = pieces.lock().map(|mut p| p.next());
                    match next {
                        Ok(Some((part, out))) => prepare(part, out),
                        _ => return,
                    }
                }
            });
        }
    });
    let mut ids = Ids::default();
    for line in &lines {
        ids.push(line.split(',').next().unwrap_or_default());
    }
    Ok((ids, records))
}

/// The truth file's pairs as record indices `(i, j)`, `i < j`, sorted and
/// distinct (a set, as `er_eval.load_truth` makes it).
pub fn truth(path: &Path, ids: &Ids) -> Result<Vec<(u32, u32)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let index: std::collections::HashMap<&str, u32> =
        (0..ids.len()).map(|i| (ids.get(i), i as u32)).collect();
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let Some((a, b)) = line.split_once(',') else {
            continue;
        };
        let find = |id: &str| {
            index
                .get(id.trim())
                .copied()
                .ok_or_else(|| format!("{}:{}: unknown rec_id {id:?}", path.display(), n + 1))
        };
        let (i, j) = (find(a)?, find(b)?);
        pairs.push((i.min(j), i.max(j)));
    }
    pairs.sort_unstable();
    pairs.dedup();
    Ok(pairs)
}
