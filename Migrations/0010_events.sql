-- Docker's events (`docker events`, GET /events), kept in the store. Triggers write them in
-- the transaction of the change they record, so every writer records them (the CLI, the
-- Engine API, prune, gc) and none can forget: a change and its event commit together or not
-- at all. The events that name an operation rather than a row's change (load, pull, import)
-- are written by that operation's commit (Store.recordEvent). Store.events reads them.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: readers follow it
    time_nano  INTEGER NOT NULL,                   -- Unix time in nanoseconds (ms precision)
    type       TEXT NOT NULL,                      -- image, container, volume
    action     TEXT NOT NULL,                      -- Docker's words: tag, untag, delete, create, start, die, ...
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'          -- a JSON object of strings
);
CREATE INDEX events_time ON events(time_nano);

-- Bounded: every thousandth event drops those more than 10,000 back (dockerd keeps 1,000).
CREATE TRIGGER events_bound AFTER INSERT ON events WHEN NEW.seq % 1000 = 0 BEGIN
    DELETE FROM events WHERE seq <= NEW.seq - 10000;
END;

-- Images. A tag's name is stored in full (docker.io/library/busybox:latest); events give the
-- familiar form, as dockerd. An untag and a delete name the image by its ID, as dockerd.
CREATE TRIGGER events_tag_insert AFTER INSERT ON tags BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'image', 'tag', NEW.image_id,
        json_object('name', CASE WHEN NEW.name LIKE 'docker.io/library/%' THEN substr(NEW.name, 19)
                                 WHEN NEW.name LIKE 'docker.io/%' THEN substr(NEW.name, 11) ELSE NEW.name END));
END;
CREATE TRIGGER events_tag_move AFTER UPDATE OF image_id ON tags WHEN OLD.image_id != NEW.image_id BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'image', 'untag', OLD.image_id, json_object('name', OLD.image_id));
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'image', 'tag', NEW.image_id,
        json_object('name', CASE WHEN NEW.name LIKE 'docker.io/library/%' THEN substr(NEW.name, 19)
                                 WHEN NEW.name LIKE 'docker.io/%' THEN substr(NEW.name, 11) ELSE NEW.name END));
END;
CREATE TRIGGER events_tag_delete AFTER DELETE ON tags BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'image', 'untag', OLD.image_id, json_object('name', OLD.image_id));
END;
CREATE TRIGGER events_image_delete AFTER DELETE ON images BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'image', 'delete', OLD.id, json_object('name', OLD.id));
END;

-- Containers: the attributes are the container's labels, its image (as given at create) and
-- its name, as dockerd's; a die adds the exit code.
CREATE TRIGGER events_container_create AFTER INSERT ON containers BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', 'create', NEW.id,
        json_patch(coalesce(json_extract(NEW.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(NEW.config, '$.image'), ''), 'name', coalesce(NEW.name, substr(NEW.id, 1, 12)))));
END;
CREATE TRIGGER events_container_start AFTER UPDATE OF state ON containers
WHEN NEW.state = 'running' AND OLD.state != 'running' BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', 'start', NEW.id,
        json_patch(coalesce(json_extract(NEW.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(NEW.config, '$.image'), ''), 'name', coalesce(NEW.name, substr(NEW.id, 1, 12)))));
END;
CREATE TRIGGER events_container_die AFTER UPDATE OF state ON containers
WHEN OLD.state = 'running' AND NEW.state != 'running' BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', 'die', NEW.id,
        json_patch(coalesce(json_extract(NEW.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(NEW.config, '$.image'), ''), 'name', coalesce(NEW.name, substr(NEW.id, 1, 12)),
                               'exitCode', CAST(coalesce(json_extract(NEW.config, '$.exitCode'), 0) AS TEXT))));
END;
CREATE TRIGGER events_container_pause AFTER UPDATE OF config ON containers
WHEN OLD.state = 'running' AND NEW.state = 'running' AND coalesce(json_extract(OLD.config, '$.paused'), 0) != coalesce(json_extract(NEW.config, '$.paused'), 0) BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', CASE WHEN coalesce(json_extract(NEW.config, '$.paused'), 0) THEN 'pause' ELSE 'unpause' END, NEW.id,
        json_patch(coalesce(json_extract(NEW.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(NEW.config, '$.image'), ''), 'name', coalesce(NEW.name, substr(NEW.id, 1, 12)))));
END;
CREATE TRIGGER events_container_rename AFTER UPDATE OF name ON containers
WHEN coalesce(OLD.name, '') != coalesce(NEW.name, '') BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', 'rename', NEW.id,
        json_patch(coalesce(json_extract(NEW.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(NEW.config, '$.image'), ''), 'name', coalesce(NEW.name, substr(NEW.id, 1, 12)),
                               'oldName', '/' || coalesce(OLD.name, substr(OLD.id, 1, 12)))));
END;
CREATE TRIGGER events_container_destroy AFTER DELETE ON containers BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'container', 'destroy', OLD.id,
        json_patch(coalesce(json_extract(OLD.config, '$.labels'), '{}'),
                   json_object('image', coalesce(json_extract(OLD.config, '$.image'), ''), 'name', coalesce(OLD.name, substr(OLD.id, 1, 12)))));
END;

-- Volumes.
CREATE TRIGGER events_volume_create AFTER INSERT ON volumes BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'volume', 'create', NEW.name, json_object('driver', 'local'));
END;
CREATE TRIGGER events_volume_destroy AFTER DELETE ON volumes BEGIN
    INSERT INTO events(time_nano, type, action, actor_id, attributes) VALUES (
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000000,
        'volume', 'destroy', OLD.name, json_object('driver', 'local'));
END;
