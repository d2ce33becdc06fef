-- The change feed's outbox: one row per thing kith observed (a record new,
-- changed or gone; a link, a party created, merged or retired; a
-- contribution; a review decision; an erasure request; a chunk of ingested
-- events). Rows are written in the same transaction as the change they
-- report, so a change is never without its row, nor a row without its change.
--
-- AUTOINCREMENT so that a seq, once given out, is never given again (even if
-- old rows are pruned): consumers resume from the last seq they saw. SQLite
-- has one writer at a time, so seqs become visible in order, without gaps.
--
-- `data` is JSON of ids, record refs, kinds and counts, never identity or
-- fact values (the feed leaves kith); contributions keep their attribute and,
-- for consents and preferences, the new value.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    party   TEXT,
    subject TEXT NOT NULL,
    data    TEXT NOT NULL CHECK (json_valid(data))
);

-- Where each consumer of the feed (a webhook, the NATS publisher, the ingest
-- resolver's position in the event log) stands.
CREATE TABLE feed_cursors (
    consumer   TEXT PRIMARY KEY NOT NULL,
    seq        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
