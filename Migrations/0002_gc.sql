-- Garbage collection, leases and fsck.

-- One row per unpacked snapshot directory under snapshots/<id>/ (containers issue).
CREATE TABLE snapshots (
    id         TEXT PRIMARY KEY,
    chain_id   TEXT REFERENCES layers(chain_id),
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX snapshots_chain ON snapshots(chain_id);

-- The mutation counter value when gc last finished (for gc --if-dirty).
INSERT INTO meta(key, value) VALUES ('last_gc_mutations', '-1');

CREATE INDEX leases_expiry ON leases(expires_at);
CREATE INDEX blobs_created ON blobs(created_at);
CREATE INDEX images_added ON images(added_at);
