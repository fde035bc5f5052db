-- A data directory's database as imbridge wrote it with schema version 4
-- (before the outbox became the event log plus a cursor per target): the
-- schema text of migrations 1 to 4, then a little of everything, with
-- deliveries pending for two targets and a dead letter. store_test and
-- router_integration_test create a database from this file and open it with
-- today's store, which must upgrade it in place, find all of it and deliver
-- what was pending. Never edit: it is what released routers left on disk.
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  event_key TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  payload BLOB NOT NULL
);
CREATE UNIQUE INDEX events_by_key ON events(event_key);
CREATE INDEX events_by_received_at ON events(received_at);

CREATE TABLE event_blobs (
  event_id INTEGER NOT NULL,
  blob_id TEXT NOT NULL,
  PRIMARY KEY (event_id, blob_id)
) WITHOUT ROWID;
CREATE INDEX event_blobs_by_blob ON event_blobs(blob_id);

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY,
  event_id INTEGER NOT NULL,
  target_key TEXT NOT NULL,
  target BLOB NOT NULL,
  link TEXT NOT NULL,
  sender_name TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  state INTEGER NOT NULL,
  dead_at INTEGER
);
CREATE INDEX deliveries_by_target ON deliveries(target_key, state);
CREATE INDEX dead_letters_by_time ON deliveries(dead_at) WHERE state = 1;

CREATE TABLE messages (
  channel_key TEXT NOT NULL,
  native_id TEXT NOT NULL,
  group_id INTEGER NOT NULL,
  part INTEGER NOT NULL,
  is_copy INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (channel_key, native_id)
) WITHOUT ROWID;
CREATE INDEX messages_by_group ON messages(group_id, channel_key, part);

CREATE TABLE roster (
  platform TEXT NOT NULL,
  account TEXT NOT NULL,
  user_id TEXT NOT NULL,
  display_name TEXT NOT NULL,
  presence INTEGER NOT NULL,
  status_text TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (platform, account, user_id)
) WITHOUT ROWID;

CREATE TABLE blobs (
  blob_id TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE TABLE participants (
  channel_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  display_name TEXT NOT NULL,
  last_seen_at INTEGER NOT NULL,
  PRIMARY KEY (channel_key, user_id)
) WITHOUT ROWID;

CREATE INDEX dead_letters_by_target ON deliveries(target_key) WHERE state = 1;

CREATE INDEX dead_letters_by_id ON deliveries(id) WHERE state = 1;

PRAGMA user_version = 4;

INSERT INTO meta(key, value) VALUES
  ('router_id', 'fixture-router-v4-0001'),
  ('last_event_id', 3),
  ('last_delivery_id', 4);

-- Events: 1 waits for beta and gamma, 2 was dead-lettered at beta, 3 was
-- delivered.
INSERT INTO events(id, event_key, received_at, payload) VALUES
  (1, 'alpha:1', 1700000000000, X'0a07616c7068613a31120e0a05616c7068611201611a0241311880d095ffbc3152200a026d3112090a0255311203416e6e1a0f0a0d68656c6c6f2066726f6d207634'),
  (2, 'alpha:2', 1700000001000, X'0a07616c7068613a32120e0a05616c7068611201611a0241311880d095ffbc3152220a026d3212090a0255311203416e6e1a110a0f726566757365642062792062657461'),
  (3, 'alpha:3', 1700000002000, X'0a07616c7068613a33120e0a05616c7068611201611a0241311880d095ffbc3152230a026d3312090a0255311203416e6e1a120a1064656c697665726564206265666f7265');

INSERT INTO event_blobs(event_id, blob_id) VALUES
  (1, 'aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11');

INSERT INTO deliveries(id, event_id, target_key, target, link, sender_name,
  attempts, created_at, next_attempt_at, last_error, state, dead_at) VALUES
  (1, 1, 'beta/b/B1', X'0a04626574611201621a024231', 'pair', 'Ann (alpha)', 0, 1700000000000, 1700000000000, '', 0,
   NULL),
  (2, 2, 'beta/b/B1', X'0a04626574611201621a024231', 'pair', 'Ann (alpha)', 3, 1700000001000, 1700000009000,
   '403 forbidden', 1, 1700000009000),
  (4, 1, 'gamma/g/G1', X'0a0567616d6d611201671a024731', 'pair', 'Ann (alpha)', 0, 1700000000000, 1700000000000, '', 0,
   NULL);

INSERT INTO messages(channel_key, native_id, group_id, part, is_copy,
  created_at) VALUES
  ('alpha/a/A1', 'm1', 1, 0, 0, 1700000000000),
  ('alpha/a/A1', 'm2', 2, 0, 0, 1700000001000),
  ('alpha/a/A1', 'm3', 3, 0, 0, 1700000002000),
  ('beta/b/B1', 'copy-of-m3', 3, 0, 1, 1700000002500);

INSERT INTO roster(platform, account, user_id, display_name, presence,
  status_text, updated_at) VALUES
  ('alpha', 'a', 'U1', 'Ann', 1, 'writing', 1700000000000);

INSERT INTO blobs(blob_id, size, created_at, last_used_at) VALUES
  ('aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11', 1234,
   1700000000000, 1700000000000);

INSERT INTO records(kind, name, payload) VALUES
  ('link', 'pair', X'0a0470616972');

INSERT INTO participants(channel_key, user_id, platform, display_name,
  last_seen_at) VALUES
  ('alpha/a/A1', 'U1', 'alpha', 'Ann', 1700000002000);
