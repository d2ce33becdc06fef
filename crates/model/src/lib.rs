//! kith's customer information model.
//!
//! Everything here is plain data and pure functions: no I/O, no clocks except
//! where a caller passes one in. Connectors, the hub store and the server all
//! speak these types, so they are the vocabulary of the whole system.
//!
//! - [`Party`]: a person or organisation, whatever their relation to the business.
//! - [`RecordRef`] / [`IdentityRecord`]: one row of a source, by `(source, key)`,
//!   with only its identifying attributes.
//! - [`Link`]: the evidence that a source record belongs to a party.
//! - [`Fact`]: anything known about a party, of an open [`FactKind`], with [`Provenance`].
//! - [`Contribution`]: what a customer or staff member added (corrections,
//!   preferences, consents), anchored to the record or identifier it concerns.

mod contribution;
mod cursor;
mod fact;
mod identity;
pub mod normalize;
mod party;
mod quarantine;

pub use contribution::{Anchor, Contribution, ContributionKind};
pub use cursor::CursorValue;
pub use fact::{Cardinality, Fact, FactKind, Provenance};
pub use identity::{IdentityAttrs, IdentityRecord, RecordRef};
pub use party::{Link, Party, PartyId, PartyKind, Relation, RelationKind, Relationship};
pub use quarantine::{FileStamp, Quarantined};

/// Timestamps are UTC everywhere in kith.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
