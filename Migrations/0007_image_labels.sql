-- The image config's Labels (config.Labels) as a JSON object, '{}' when it has none, so that
-- listings (docker images' Labels field, --filter label=) read them from the row instead of
-- opening every config blob. NULL: an image stored before this migration; Store.open fills
-- those in from their config blobs (Store.fillMissingLabels).
ALTER TABLE images ADD COLUMN labels TEXT;
