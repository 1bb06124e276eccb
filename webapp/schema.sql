-- Content-addressed files: the bytes live in the file store under their SHA-256.
CREATE TABLE IF NOT EXISTS files (
    sha256      TEXT PRIMARY KEY,
    sha1        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    name        TEXT NOT NULL,
    uploaded_at REAL NOT NULL,
    -- Deleting a file removes its bytes but keeps the row, so push history still names it.
    deleted_at  REAL
);

-- What the last heartbeat of each device said.
CREATE TABLE IF NOT EXISTS devices (
    name        TEXT PRIMARY KEY,
    online      INTEGER NOT NULL DEFAULT 0,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    uptime      INTEGER,
    boot        INTEGER,
    mem_free    INTEGER,
    fw          TEXT,
    interval    INTEGER,
    features    TEXT NOT NULL DEFAULT '[]',
    files       TEXT NOT NULL DEFAULT '{}',
    plugins     TEXT NOT NULL DEFAULT '{}',
    note        TEXT,
    -- 1 while it runs an update on probation (it refuses a new one until its verdict)
    probation   INTEGER NOT NULL DEFAULT 0,
    -- Its MicroPython release ("1.24.1") and sys.implementation._mpy (the .mpy format it
    -- loads), as its last heartbeat said; NULL from firmware that does not say.
    micropython TEXT,
    mpy         INTEGER,
    -- The last ID/ota/status it sent (JSON, as push/trigger.py parses it): the verdict on a
    -- push whose process had stopped following it, for the process that adopts it.
    ota_status  TEXT,
    -- When anything above last changed: the cursor of the live device list.
    updated_at  REAL NOT NULL
);
-- The live list reads every name and updated_at each poll (devices.Registry.listing) and the
-- whole row only where updated_at moved: from this index alone, without the rows.
CREATE INDEX IF NOT EXISTS devices_stamp ON devices (name, updated_at);

-- Devices forgotten by a person (never by the server itself): the live list's cursor tells
-- open pages to drop their cards.
CREATE TABLE IF NOT EXISTS forgotten_devices (
    name TEXT PRIMARY KEY,
    at   REAL NOT NULL
);

-- Tags a person gives a device (a room, a kind, anything): every place that picks devices
-- takes tags too (targets.py).
CREATE TABLE IF NOT EXISTS device_tags (
    device TEXT NOT NULL,
    tag    TEXT NOT NULL,
    PRIMARY KEY (device, tag)
);
CREATE INDEX IF NOT EXISTS device_tags_tag ON device_tags (tag, device);

-- A release: a named, immutable set of files under their names on the device (releases.py).
-- delete_extra: a device converging to it also deletes the files the release does not hold
-- (never the safe-boot code, the runtime or settings.json).
CREATE TABLE IF NOT EXISTS releases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    delete_extra INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS release_files (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    target      TEXT NOT NULL,
    file_sha256 TEXT NOT NULL REFERENCES files (sha256),
    PRIMARY KEY (release_id, target)
);

-- A rollout: a release taken to a set of devices in waves (rollout/). Its settings are fixed
-- at creation; `state` and the baseline of the failure share change as it runs.
CREATE TABLE IF NOT EXISTS rollouts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id    INTEGER NOT NULL REFERENCES releases (id),
    canary        INTEGER NOT NULL,
    wave_size     INTEGER NOT NULL,
    concurrency   INTEGER NOT NULL,
    threshold     REAL NOT NULL,
    auto_continue INTEGER NOT NULL,
    offline_wait  REAL NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    -- the failure share counts the devices decided after the last resume: how many were
    -- done and failed then
    base_done     INTEGER NOT NULL DEFAULT 0,
    base_failed   INTEGER NOT NULL DEFAULT 0,
    -- 1 once the canary wave came back healthy and the rollout went on past it
    canary_passed INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    finished_at   REAL
);
CREATE INDEX IF NOT EXISTS rollouts_updated ON rollouts (updated_at);

-- Each device of a rollout: its wave (0 is the canary; NULL: it ran the release already when
-- the rollout was made), its state there, its push, since when it is waited for (offline).
CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id INTEGER NOT NULL REFERENCES rollouts (id),
    device     TEXT NOT NULL,
    wave       INTEGER,
    position   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    push_id    INTEGER REFERENCES pushes (id),
    detail     TEXT,
    waiting_since REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (rollout_id, device)
);

-- A push sends one file, or several as one bundle (push_files, in stream order), and may
-- delete files on the device. The first file is also named here, for lists. A NULL
-- file_sha256 (here and in push_files) is a delete of `target`.
CREATE TABLE IF NOT EXISTS pushes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device      TEXT NOT NULL,
    file_sha256 TEXT REFERENCES files (sha256),
    target      TEXT NOT NULL,
    nfiles      INTEGER NOT NULL DEFAULT 1,
    force       INTEGER NOT NULL DEFAULT 0,
    attempt     INTEGER NOT NULL DEFAULT 1,
    form        TEXT,
    token       TEXT,
    state       TEXT NOT NULL,
    reason      TEXT,
    detail      TEXT,
    bytes_sent  INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    finished_at REAL,
    -- The process running it (push/store.py, process_id) and, while it talks to the device,
    -- until when it holds the device (Unix time): one push per device across processes.
    owner       TEXT,
    lease_until REAL,
    -- Set by a process asked to cancel a push another process runs: why (the owner ends it).
    cancel_request TEXT
);
CREATE INDEX IF NOT EXISTS pushes_device ON pushes (device, id);
CREATE INDEX IF NOT EXISTS pushes_updated ON pushes (updated_at);

CREATE TABLE IF NOT EXISTS push_files (
    push_id     INTEGER NOT NULL REFERENCES pushes (id),
    position    INTEGER NOT NULL,
    file_sha256 TEXT REFERENCES files (sha256),
    target      TEXT NOT NULL,
    PRIMARY KEY (push_id, position)
);

-- One row per step of a push, timestamped: the push's timeline. A row is a state entered or
-- a note (push/states.py: a retry, a wait), never both.
CREATE TABLE IF NOT EXISTS push_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    push_id INTEGER NOT NULL REFERENCES pushes (id),
    at      REAL NOT NULL,
    state   TEXT,
    detail  TEXT,
    note    TEXT,
    CHECK ((state IS NULL) != (note IS NULL))
);
CREATE INDEX IF NOT EXISTS push_events_push ON push_events (push_id, id);

CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    REAL NOT NULL,
    -- Part of every session's and remember-me cookie's user id: logging out or changing the
    -- password adds one, and every copy of every earlier cookie stops working.
    session_epoch INTEGER NOT NULL DEFAULT 0
);

-- API tokens for scripts: only a SHA-256 of each is kept; the token is shown once.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    last_used_at REAL,
    revoked_at   REAL
);

-- Each added device's secret key (it signs the device's triggers) and the last counter used.
CREATE TABLE IF NOT EXISTS device_keys (
    name       TEXT PRIMARY KEY,
    key        TEXT NOT NULL,
    counter    INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
