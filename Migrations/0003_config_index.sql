-- images.config_digest references blobs: deleting a blob row checks this foreign key, which
-- scanned every image without an index (gc on 10,000 images spent seconds here).
CREATE INDEX images_config ON images(config_digest);
