-- Where blobs are known to exist on registries: recorded at pull (the repository it came
-- from) and at push (the repository it went to). A push to another repository of the same
-- registry mounts such a blob (POST ?mount=&from=) instead of uploading it again.
-- registry is the host as written in references ("docker.io", "127.0.0.1:5000").
CREATE TABLE blob_sources (
    digest     TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (digest, registry, repository)
) WITHOUT ROWID;
