-- kith hub store, first schema.
--
-- Timestamps are RFC 3339 text in UTC with nanoseconds and a `Z` suffix
-- (`2024-05-01T10:00:00.000000000Z`): fixed width, so text order is time order
-- and comparisons such as `seen_at < ?` work on the text.
-- JSON columns hold the model's serde form.

-- The identity index: identifying attributes of each source record, never its facts.
CREATE TABLE records (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    relation   TEXT,
    attrs      TEXT NOT NULL,
    cursor     TEXT,
    updated_at TEXT,
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    PRIMARY KEY (source, key)
);

-- Normalised identifiers derived from a record (`email:ann@example.com`).
CREATE TABLE identifiers (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    identifier TEXT NOT NULL,
    PRIMARY KEY (source, key, identifier),
    FOREIGN KEY (source, key) REFERENCES records (source, key) ON DELETE CASCADE
);
CREATE INDEX identifiers_by_identifier ON identifiers (identifier);

CREATE TABLE parties (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    founding_source TEXT NOT NULL,
    founding_key    TEXT NOT NULL
);

-- A merged-away id keeps resolving to the survivor. No foreign keys: a
-- redirect outlives the retirement of either end so old ids never dangle silently.
CREATE TABLE party_redirects (
    from_id TEXT PRIMARY KEY NOT NULL,
    to_id   TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX party_redirects_by_to ON party_redirects (to_id);

-- No foreign key to records: a link is written by the resolver, which may run
-- on records it has just read; remove_records deletes links explicitly.
CREATE TABLE links (
    source    TEXT NOT NULL,
    key       TEXT NOT NULL,
    party_id  TEXT NOT NULL REFERENCES parties (id),
    rule      TEXT NOT NULL,
    score     REAL NOT NULL,
    evidence  TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX links_by_party ON links (party_id);

-- Derived and replaced wholesale, so no key: duplicates from the resolver are kept as given.
CREATE TABLE relationships (
    from_id  TEXT NOT NULL,
    to_id    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX relationships_by_from ON relationships (from_id);
CREATE INDEX relationships_by_to ON relationships (to_id);

CREATE TABLE sync_state (
    source            TEXT PRIMARY KEY NOT NULL,
    cursor            TEXT,
    last_sync_at      TEXT,
    last_reconcile_at TEXT
);

CREATE TABLE file_index_stamps (
    source      TEXT NOT NULL,
    index_name  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL,
    PRIMARY KEY (source, index_name)
);

CREATE TABLE file_index_entries (
    source     TEXT NOT NULL,
    index_name TEXT NOT NULL,
    key        TEXT NOT NULL,
    byte_offset INTEGER NOT NULL
);
-- The offset is in the index so that lookups never touch the table.
CREATE INDEX file_index_entries_by_key ON file_index_entries (source, index_name, key, byte_offset);

-- `anchor_key` is a canonical text form of `anchor` for equality lookups.
-- No foreign key to parties: contributions outlive merges, splits and retirements.
CREATE TABLE contributions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    party_id   TEXT NOT NULL,
    anchor     TEXT NOT NULL,
    anchor_key TEXT NOT NULL,
    kind       TEXT NOT NULL,
    attribute  TEXT NOT NULL,
    value      TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX contributions_by_anchor ON contributions (anchor_key);

-- kind is `record` (value: canonical record ref) or `identifier_hash` (value: the hash).
CREATE TABLE suppressions (
    kind   TEXT NOT NULL,
    value  TEXT NOT NULL,
    reason TEXT NOT NULL,
    at     TEXT NOT NULL,
    UNIQUE (kind, value)
);

CREATE TABLE quarantine (
    source   TEXT NOT NULL,
    location TEXT NOT NULL,
    key      TEXT,
    reason   TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (source, location)
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    party_id TEXT,
    detail   TEXT NOT NULL
);
CREATE INDEX audit_by_at ON audit (at);
CREATE INDEX audit_by_party ON audit (party_id, at);
