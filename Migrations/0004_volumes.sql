-- Named volumes: a row per volumes/<name>/data directory; they outlive containers.
CREATE TABLE volumes (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Which container mounts which volume where.
CREATE TABLE container_volumes (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume_name  TEXT NOT NULL REFERENCES volumes(name),
    path         TEXT NOT NULL,
    PRIMARY KEY (container_id, path)
) WITHOUT ROWID;
CREATE INDEX container_volumes_volume ON container_volumes(volume_name);
