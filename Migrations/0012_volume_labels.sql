-- Volume labels (`docker volume create --label`), a JSON object of strings; NULL for none.
-- An anonymous volume (`-v /path`, an image's VOLUME) carries com.docker.volume.anonymous,
-- as dockerd marks one: `volume prune` without `all` removes only those.
ALTER TABLE volumes ADD COLUMN labels TEXT;
