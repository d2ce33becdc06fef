-- The clerical review queue: pairs of records the match model was unsure of,
-- and the decisions people made about any pair. A decision is respected by
-- every later linking run: accepted pairs always link, rejected pairs never do.
CREATE TABLE review_pairs (
    a_source    TEXT NOT NULL,
    a_key       TEXT NOT NULL,
    b_source    TEXT NOT NULL,
    b_key       TEXT NOT NULL,
    probability REAL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    decided_by  TEXT,
    decided_at  TEXT,
    queued_at   TEXT NOT NULL,
    PRIMARY KEY (a_source, a_key, b_source, b_key)
);
CREATE INDEX review_pairs_status ON review_pairs (status);
