-- strata schema, version 1. Never edit once landed: add 0002_….sql instead.
-- Digests are 'sha256:<hex>' text. Times are unix seconds (UTC).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('mutations', '0');

-- Every file under blobs/ has a row here once it is fully written and verified (law 1).
CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL CHECK (size >= 0),
    media_type TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per layer chain: a diffID on top of its parent chain.
CREATE TABLE layers (
    chain_id        TEXT PRIMARY KEY,
    diff_id         TEXT NOT NULL,
    parent_chain_id TEXT REFERENCES layers(chain_id),
    size            INTEGER NOT NULL,       -- uncompressed size of this layer alone
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX layers_parent ON layers(parent_chain_id);
CREATE INDEX layers_diff ON layers(diff_id);

-- A stored layer blob (plain, gzip or zstd) and the diffID computed from its bytes.
CREATE TABLE layer_blobs (
    blob_digest       TEXT PRIMARY KEY REFERENCES blobs(digest) ON DELETE CASCADE,
    diff_id           TEXT NOT NULL,
    compression       TEXT NOT NULL CHECK (compression IN ('none', 'gzip', 'zstd')),
    uncompressed_size INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX layer_blobs_diff ON layer_blobs(diff_id);

-- An image is identified by its config digest.
CREATE TABLE images (
    id              TEXT PRIMARY KEY,
    config_digest   TEXT NOT NULL REFERENCES blobs(digest),
    manifest_digest TEXT NOT NULL REFERENCES blobs(digest),
    index_digest    TEXT REFERENCES blobs(digest),
    top_chain_id    TEXT REFERENCES layers(chain_id),
    parent_id       TEXT REFERENCES images(id),
    layer_count     INTEGER NOT NULL,
    history_count   INTEGER NOT NULL,
    created         INTEGER,
    author          TEXT,
    os              TEXT,
    architecture    TEXT,
    variant         TEXT,
    size            INTEGER NOT NULL,        -- sum of uncompressed layer sizes
    added_at        INTEGER NOT NULL,
    broken          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX images_parent ON images(parent_id);
CREATE INDEX images_top ON images(top_chain_id);
CREATE INDEX images_created ON images(created);
CREATE INDEX images_manifest ON images(manifest_digest);
CREATE INDEX images_index ON images(index_digest);

CREATE TABLE image_layers (
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    chain_id    TEXT NOT NULL REFERENCES layers(chain_id),
    blob_digest TEXT NOT NULL REFERENCES blobs(digest),
    media_type  TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
) WITHOUT ROWID;
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE INDEX image_layers_blob ON image_layers(blob_digest);

-- Config history, one row per entry; layer_position names the layer the step made.
CREATE TABLE history (
    image_id       TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    created        INTEGER,
    created_by     TEXT NOT NULL DEFAULT '',
    author         TEXT NOT NULL DEFAULT '',
    comment        TEXT NOT NULL DEFAULT '',
    empty_layer    INTEGER NOT NULL,
    layer_position INTEGER,
    PRIMARY KEY (image_id, position)
) WITHOUT ROWID;

-- name is the full normalised reference, e.g. docker.io/library/busybox:latest
CREATE TABLE tags (
    name       TEXT PRIMARY KEY,
    image_id   TEXT NOT NULL REFERENCES images(id),
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX tags_image ON tags(image_id);

CREATE TABLE repo_digests (
    name     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, digest)
) WITHOUT ROWID;
CREATE INDEX repo_digests_image ON repo_digests(image_id);

-- Content graph: index -> manifest, manifest -> config/layer blobs, image -> manifest.
CREATE TABLE edges (
    src  TEXT NOT NULL,
    dst  TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (src, dst, kind)
) WITHOUT ROWID;
CREATE INDEX edges_dst ON edges(dst);

CREATE TABLE containers (
    id         TEXT PRIMARY KEY,
    name       TEXT UNIQUE,
    image_id   TEXT NOT NULL REFERENCES images(id),
    state      TEXT NOT NULL,
    config     TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX containers_image ON containers(image_id);

CREATE TABLE build_cache (
    key             TEXT PRIMARY KEY,
    parent_image_id TEXT,
    instruction     TEXT NOT NULL,
    result_image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    last_used_at    INTEGER NOT NULL,
    uses            INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE INDEX build_cache_result ON build_cache(result_image_id);

CREATE TABLE leases (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE lease_refs (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    ref      TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, ref)
) WITHOUT ROWID;
CREATE INDEX lease_refs_ref ON lease_refs(ref);

-- Files to unlink once the transaction that dropped their rows has committed (law 2).
CREATE TABLE pending_unlinks (
    path      TEXT PRIMARY KEY,
    queued_at INTEGER NOT NULL
) WITHOUT ROWID;
