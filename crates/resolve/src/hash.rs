//! A small, fast, deterministic hash for the short strings kith keys
//! tables by (block keys, names in term-frequency tables). The standard
//! library's SipHash resists crafted collisions, which these tables, built
//! from one's own records, do not need; it costs several times as much on
//! ten-byte keys, and scoring looks up millions of them.

use std::hash::{BuildHasherDefault, Hasher};

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a over bytes fed in any number of pieces: the hash of a
/// value written piece by piece is the hash of the whole.
#[inline]
pub(crate) fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Spreads FNV's bits (MurmurHash3's finaliser, a bijection) so that hash
/// tables fill evenly.
#[inline]
pub(crate) fn finish(h: u64) -> u64 {
    let mut h = h ^ (h >> 33);
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// [`fnv`] and [`finish`] as a [`Hasher`] for `HashMap`s.
pub(crate) struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(FNV_OFFSET)
    }
}

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        finish(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv(self.0, bytes);
    }
}

pub(crate) type FnvBuild = BuildHasherDefault<FnvHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_as_the_whole() {
        let whole = fnv(FNV_OFFSET, b"smith\x1fann");
        let pieces = fnv(fnv(fnv(FNV_OFFSET, b"smi"), b"th\x1f"), b"ann");
        assert_eq!(whole, pieces);
        assert_ne!(fnv(FNV_OFFSET, b"ab"), fnv(FNV_OFFSET, b"ba"));
        // Known FNV-1a 64 value of "a".
        assert_eq!(fnv(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
