-- The columns `strata images` (and the Engine's GET /images/json) read for every image, in
-- image-ID order, as one covering index. The listing then reads this index alone: a quarter
-- of the pages of the images table, whose rows also hold three more digests and the
-- columns only inspect and gc read. At 10,000 images a fresh process reads it in about a
-- third of the time the table takes (the listing's largest single cost).
-- Store.images's query must stay covered by it: StoreImagesTests checks the query plan.
CREATE INDEX images_listing ON images(id, created, size, layer_count, parent_id, labels);
