-- The image config's Labels (config.Labels) as a JSON object, '{}' when it has none, so that
-- listings (docker images' Labels field, --filter label=) read them from the row instead of
-- opening every config blob. NULL: an image stored before this migration; Store.open fills
-- those in from their config blobs (Store.fillMissingLabels).
ALTER TABLE images ADD COLUMN labels TEXT;
-- Store.open asks for the rows still to fill at every open: a partial index keeps that one
-- lookup, not a scan of every image.
CREATE INDEX images_labels_missing ON images(id) WHERE labels IS NULL;
