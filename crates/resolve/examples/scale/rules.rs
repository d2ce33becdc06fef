//! The blocking rules for `gen_scale.py`'s population, shared by the
//! `scale` and `incremental` examples.

use kith_resolve::{BlockKey, BlockRule, Blocking, LinkType};

/// Splink's scale rules (`shared/peers/splink_scale.py`) in kith's keys —
/// both name orders, the id, date of birth with postcode or an initial,
/// postcode with street, number with street — and the id within one typo
/// with either initial: a mistyped id is the commonest reason a true pair
/// meets in no other block.
pub fn blocking() -> Blocking {
    use BlockKey as K;
    Blocking {
        rules: vec![
            BlockRule::new(&[K::NamePair]),
            BlockRule::new(&[K::ExternalId]),
            BlockRule::new(&[K::DateOfBirth, K::Postcode]),
            BlockRule::new(&[K::DateOfBirth, K::GivenInitial]),
            BlockRule::new(&[K::Postcode, K::Street]),
            BlockRule::new(&[K::StreetNumber, K::Street]),
            BlockRule::new(&[K::ExternalIdOneEdit, K::GivenInitial]),
            BlockRule::new(&[K::ExternalIdOneEdit, K::FamilyInitial]),
        ],
        link_type: LinkType::Dedupe,
        max_block: 1000,
    }
}
