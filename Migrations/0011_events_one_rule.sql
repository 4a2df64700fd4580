-- Events, each rule said once. 0010 repeated the clock and each actor's attributes in every
-- trigger; here the table takes its time as a DEFAULT, and two views give the attributes
-- dockerd attaches to an actor, which the triggers and the store's own operation events
-- (Store.recordContainerEvent, Store.recordImageEvent: kill, stop, commit, exec, attach, push,
-- save, load, pull, import) all read:
--   image_tag_actors:   a tag's image, its labels and the tag's familiar name (as dockerd's
--                       LogImageEvent: the image's labels, then name);
--   container_actors:   a container's labels, its image (as given at create) and its name.
-- Image events now carry the image's labels, as dockerd's do (a delete has none: dockerd
-- logs it once the image is gone).

DROP TRIGGER events_tag_insert;
DROP TRIGGER events_tag_move;
DROP TRIGGER events_tag_delete;
DROP TRIGGER events_image_delete;
DROP TRIGGER events_container_create;
DROP TRIGGER events_container_start;
DROP TRIGGER events_container_die;
DROP TRIGGER events_container_pause;
DROP TRIGGER events_container_rename;
DROP TRIGGER events_container_destroy;
DROP TRIGGER events_volume_create;
DROP TRIGGER events_volume_destroy;
DROP TRIGGER events_bound;

CREATE TABLE events_next (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: readers follow it
    -- Unix time in nanoseconds (ms precision), taken when the row is written.
    time_nano  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER) * 1000000000
                                         + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000),
    type       TEXT NOT NULL,                      -- image, container, volume
    action     TEXT NOT NULL,                      -- Docker's words: tag, untag, delete, create, start, die, ...
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'          -- a JSON object of strings
);
INSERT INTO events_next(seq, time_nano, type, action, actor_id, attributes)
    SELECT seq, time_nano, type, action, actor_id, attributes FROM events ORDER BY seq;
-- Followers go on from the last sequence number even when the table was empty.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))
    WHERE name = 'events_next';
INSERT INTO sqlite_sequence(name, seq)
    SELECT 'events_next', seq FROM sqlite_sequence WHERE name = 'events'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_next');
DROP TABLE events;
ALTER TABLE events_next RENAME TO events;
CREATE INDEX events_time ON events(time_nano);

-- Bounded: every thousandth event drops those more than 10,000 back (dockerd keeps 1,000).
CREATE TRIGGER events_bound AFTER INSERT ON events WHEN NEW.seq % 1000 = 0 BEGIN
    DELETE FROM events WHERE seq <= NEW.seq - 10000;
END;

-- A tag is stored in full (docker.io/library/busybox:latest); events give the familiar form.
CREATE VIEW image_tag_actors AS
SELECT t.name, t.image_id,
       json_patch(coalesce(i.labels, '{}'),
                  json_object('name', CASE WHEN t.name LIKE 'docker.io/library/%' THEN substr(t.name, 19)
                                           WHEN t.name LIKE 'docker.io/%' THEN substr(t.name, 11)
                                           ELSE t.name END)) AS attributes
FROM tags t LEFT JOIN images i ON i.id = t.image_id;

CREATE VIEW container_actors AS
SELECT id,
       json_patch(coalesce(json_extract(config, '$.labels'), '{}'),
                  json_object('image', coalesce(json_extract(config, '$.image'), ''),
                              'name', coalesce(name, substr(id, 1, 12)))) AS attributes
FROM containers;

-- Images. An untag and a delete name the image by its ID, as dockerd.
CREATE TRIGGER events_tag_insert AFTER INSERT ON tags BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'image', 'tag', image_id, attributes FROM image_tag_actors WHERE name = NEW.name;
END;
CREATE TRIGGER events_tag_move AFTER UPDATE OF image_id ON tags WHEN OLD.image_id != NEW.image_id BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'image', 'untag', OLD.image_id,
               json_patch(coalesce((SELECT labels FROM images WHERE id = OLD.image_id), '{}'), json_object('name', OLD.image_id));
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'image', 'tag', image_id, attributes FROM image_tag_actors WHERE name = NEW.name;
END;
CREATE TRIGGER events_tag_delete AFTER DELETE ON tags BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'image', 'untag', OLD.image_id,
               json_patch(coalesce((SELECT labels FROM images WHERE id = OLD.image_id), '{}'), json_object('name', OLD.image_id));
END;
CREATE TRIGGER events_image_delete AFTER DELETE ON images BEGIN
    INSERT INTO events(type, action, actor_id, attributes) VALUES ('image', 'delete', OLD.id, json_object('name', OLD.id));
END;

-- Containers; a die adds the exit code, a rename the old name. A destroy reads the row
-- before it goes (a refused delete takes its event back with it).
CREATE TRIGGER events_container_create AFTER INSERT ON containers BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', 'create', id, attributes FROM container_actors WHERE id = NEW.id;
END;
CREATE TRIGGER events_container_start AFTER UPDATE OF state ON containers
WHEN NEW.state = 'running' AND OLD.state != 'running' BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', 'start', id, attributes FROM container_actors WHERE id = NEW.id;
END;
CREATE TRIGGER events_container_die AFTER UPDATE OF state ON containers
WHEN OLD.state = 'running' AND NEW.state != 'running' BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', 'die', id,
               json_patch(attributes, json_object('exitCode', CAST(coalesce(json_extract(NEW.config, '$.exitCode'), 0) AS TEXT)))
        FROM container_actors WHERE id = NEW.id;
END;
CREATE TRIGGER events_container_pause AFTER UPDATE OF config ON containers
WHEN OLD.state = 'running' AND NEW.state = 'running'
     AND coalesce(json_extract(OLD.config, '$.paused'), 0) != coalesce(json_extract(NEW.config, '$.paused'), 0) BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', CASE WHEN coalesce(json_extract(NEW.config, '$.paused'), 0) THEN 'pause' ELSE 'unpause' END, id, attributes
        FROM container_actors WHERE id = NEW.id;
END;
CREATE TRIGGER events_container_rename AFTER UPDATE OF name ON containers
WHEN coalesce(OLD.name, '') != coalesce(NEW.name, '') BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', 'rename', id,
               json_patch(attributes, json_object('oldName', '/' || coalesce(OLD.name, substr(OLD.id, 1, 12))))
        FROM container_actors WHERE id = NEW.id;
END;
CREATE TRIGGER events_container_destroy BEFORE DELETE ON containers BEGIN
    INSERT INTO events(type, action, actor_id, attributes)
        SELECT 'container', 'destroy', id, attributes FROM container_actors WHERE id = OLD.id;
END;

-- Volumes.
CREATE TRIGGER events_volume_create AFTER INSERT ON volumes BEGIN
    INSERT INTO events(type, action, actor_id, attributes) VALUES ('volume', 'create', NEW.name, json_object('driver', 'local'));
END;
CREATE TRIGGER events_volume_destroy AFTER DELETE ON volumes BEGIN
    INSERT INTO events(type, action, actor_id, attributes) VALUES ('volume', 'destroy', OLD.name, json_object('driver', 'local'));
END;
