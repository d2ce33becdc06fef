-- Who may reach what: API keys, staff users, sign-in sessions, one-time
-- sign-in codes for customers, and erasure requests; and customers' disputes
-- in the review queue.
--
-- Secrets are never stored: keys, session tokens and codes are kept as
-- lower-case hex SHA-256 hashes, staff passwords as Argon2 PHC strings.
-- AUTOINCREMENT so that an id, once given out, never names something else.

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    label        TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'contribute', 'ingest')),
    prefix       TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
);

-- E-mail addresses are stored lower-case; NOCASE keeps the uniqueness
-- case-insensitive even for a row written some other way.
CREATE TABLE staff_users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

-- `subject` is the party id of a customer's session, the staff user's id (as
-- text) of a staff session; `identifier` is the verified identifier a
-- customer signed in with, NULL for staff. No foreign keys: party ids outlive
-- merges, and sessions are ended explicitly.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    subject_type TEXT NOT NULL CHECK (subject_type IN ('customer', 'staff')),
    subject      TEXT NOT NULL,
    identifier   TEXT,
    csrf         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX sessions_by_subject ON sessions (subject_type, subject);

CREATE TABLE login_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL,
    party      TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    salt       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    TEXT
);
CREATE INDEX login_codes_by_identifier ON login_codes (identifier, created_at);

-- `receipts` holds the JSON list of what was done or asked of each source.
-- No foreign key to parties: the request outlives the party it erased.
CREATE TABLE erasure_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    party        TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    receipts     TEXT NOT NULL
);
CREATE INDEX erasure_requests_by_party ON erasure_requests (party, requested_at);

-- The review queue gains 'disputed' (a customer said "this isn't me").
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt; nothing
-- refers to it, so dropping and renaming is safe inside this transaction.
CREATE TABLE review_pairs_new (
    a_source    TEXT NOT NULL,
    a_key       TEXT NOT NULL,
    b_source    TEXT NOT NULL,
    b_key       TEXT NOT NULL,
    probability REAL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'disputed')),
    decided_by  TEXT,
    decided_at  TEXT,
    queued_at   TEXT NOT NULL,
    PRIMARY KEY (a_source, a_key, b_source, b_key)
);
INSERT INTO review_pairs_new (a_source, a_key, b_source, b_key, probability, status,
                              decided_by, decided_at, queued_at)
    SELECT a_source, a_key, b_source, b_key, probability, status, decided_by, decided_at, queued_at
    FROM review_pairs;
DROP TABLE review_pairs;
ALTER TABLE review_pairs_new RENAME TO review_pairs;
CREATE INDEX review_pairs_status ON review_pairs (status);
