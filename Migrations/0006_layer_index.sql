-- Layer file index (issue 7): every entry of every layer, recorded in the same pass that
-- computes the diffID, once per diffID and shared by every image that uses the layer.

-- One row per indexed diffID. gc deletes it when no layers row has that diffID any more,
-- and the entries go with it (ON DELETE CASCADE).
CREATE TABLE layer_indexes (
    id         INTEGER PRIMARY KEY,
    diff_id    TEXT NOT NULL UNIQUE,
    entries    INTEGER NOT NULL,
    -- Sum of the tar headers' sizes (dive's layer size).
    size       INTEGER NOT NULL,
    -- Set when the layer is not a readable tar: no entries then, and queries say why.
    error      TEXT,
    indexed_at INTEGER NOT NULL
);

-- One row per tar entry, keyed by the cleaned path (the last entry for a path wins, as
-- when the tar is unpacked). kind: f d l h c b p o. marker: 0 entry, 1 whiteout
-- (.wh.NAME), 2 opaque directory marker (.wh..wh..opq). digest: XXH3-128 of a regular
-- file's bytes (16 raw bytes, big-endian as xxh128sum prints it): tells content apart,
-- not a security hash (the diffID is).
CREATE TABLE layer_files (
    layer_index INTEGER NOT NULL REFERENCES layer_indexes(id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    marker      INTEGER NOT NULL DEFAULT 0,
    mode        INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    link        TEXT,
    digest      BLOB,
    PRIMARY KEY (layer_index, path)
) WITHOUT ROWID;
