-- How many image rows name each blob and each layer chain, kept by triggers in the same
-- transaction as the rows themselves, so that df asks "which blobs does no image name?" and
-- "which chains does no image use?" of a partial index instead of probing four indexes for
-- each of 30,000 blobs (liveness itself does not change: docs/ARCHITECTURE.md, "Liveness").
--
-- blobs.image_refs: rows naming the blob as an image's ID (its config), manifest or index,
--   plus image_layers rows naming it as a layer (a layer used twice by one image counts twice).
-- layers.image_refs: image_layers rows naming the chain.
-- fsck recounts both (code `refcount`) and --repair rewrites them.
ALTER TABLE blobs ADD COLUMN image_refs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE layers ADD COLUMN image_refs INTEGER NOT NULL DEFAULT 0;

UPDATE blobs SET image_refs =
      (SELECT count(*) FROM images i WHERE i.id = blobs.digest)
    + (SELECT count(*) FROM images i WHERE i.manifest_digest = blobs.digest)
    + (SELECT count(*) FROM images i WHERE i.index_digest = blobs.digest)
    + (SELECT count(*) FROM image_layers il WHERE il.blob_digest = blobs.digest);
UPDATE layers SET image_refs = (SELECT count(*) FROM image_layers il WHERE il.chain_id = layers.chain_id);

CREATE INDEX blobs_unreferenced ON blobs(digest) WHERE image_refs = 0;
CREATE INDEX layers_unreferenced ON layers(chain_id) WHERE image_refs = 0;

-- An UPDATE whose row is unchanged in these columns changes no count: each trigger below
-- subtracts the old value and adds the new one, which cancel.
CREATE TRIGGER images_refs_insert AFTER INSERT ON images BEGIN
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.id;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.manifest_digest;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.index_digest;
END;
CREATE TRIGGER images_refs_delete AFTER DELETE ON images BEGIN
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.id;
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.manifest_digest;
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.index_digest;
END;
CREATE TRIGGER images_refs_update AFTER UPDATE OF id, manifest_digest, index_digest ON images BEGIN
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.id;
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.manifest_digest;
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.index_digest;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.id;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.manifest_digest;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.index_digest;
END;
-- image_layers rows go with their image by ON DELETE CASCADE, which fires these too.
CREATE TRIGGER image_layers_refs_insert AFTER INSERT ON image_layers BEGIN
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.blob_digest;
    UPDATE layers SET image_refs = image_refs + 1 WHERE chain_id = NEW.chain_id;
END;
CREATE TRIGGER image_layers_refs_delete AFTER DELETE ON image_layers BEGIN
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.blob_digest;
    UPDATE layers SET image_refs = image_refs - 1 WHERE chain_id = OLD.chain_id;
END;
CREATE TRIGGER image_layers_refs_update AFTER UPDATE OF blob_digest, chain_id ON image_layers BEGIN
    UPDATE blobs SET image_refs = image_refs - 1 WHERE digest = OLD.blob_digest;
    UPDATE layers SET image_refs = image_refs - 1 WHERE chain_id = OLD.chain_id;
    UPDATE blobs SET image_refs = image_refs + 1 WHERE digest = NEW.blob_digest;
    UPDATE layers SET image_refs = image_refs + 1 WHERE chain_id = NEW.chain_id;
END;
