-- The projects service's schema: projects, idempotency records and the outbox.
CREATE SCHEMA IF NOT EXISTS projects;

CREATE TABLE projects.projects (
  id               uuid PRIMARY KEY,
  name             text NOT NULL UNIQUE,
  display_name     text NOT NULL DEFAULT '',
  owner            text NOT NULL,
  create_time      timestamptz NOT NULL DEFAULT now(),
  update_time      timestamptz NOT NULL DEFAULT now(),
  -- Bumped on every change; the etag is derived from it.
  version          bigint NOT NULL DEFAULT 1,
  delete_time      timestamptz,
  latest_run_id    uuid,
  latest_run_state text NOT NULL DEFAULT ''
);

-- Keyset pages, most recently updated first: per owner, and for admins over everyone.
CREATE INDEX projects_owner_page ON projects.projects (owner, update_time DESC, id DESC)
  WHERE delete_time IS NULL;
CREATE INDEX projects_page ON projects.projects (update_time DESC, id DESC)
  WHERE delete_time IS NULL;

-- One row per (principal, request_id) of a mutation: a repeat finds it and returns the first
-- result. The primary key also serialises concurrent duplicates.
CREATE TABLE projects.idempotency (
  principal   text NOT NULL,
  request_id  uuid NOT NULL,
  method      text NOT NULL,
  resource_id uuid NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, request_id)
);

-- Transactional outbox (see common/outbox.h): written with the change it announces.
CREATE TABLE projects.outbox (
  id                uuid PRIMARY KEY,
  topic             text NOT NULL,
  payload           bytea NOT NULL,
  trace_request_id  text NOT NULL DEFAULT '',
  create_time       timestamptz NOT NULL DEFAULT now(),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_time timestamptz NOT NULL DEFAULT now(),
  last_error        text NOT NULL DEFAULT '',
  deliver_time      timestamptz,
  -- Rows with the same ordering key (e.g. a project id) are delivered one after another, in
  -- the order they were written; '' means no order with other rows.
  ordering_key      text NOT NULL DEFAULT '',
  seq               bigserial
);
-- next_attempt_time 'infinity' parks a row that failed for good (see last_error).
CREATE INDEX outbox_pending ON projects.outbox (next_attempt_time) WHERE deliver_time IS NULL;
CREATE INDEX outbox_order ON projects.outbox (ordering_key, seq) WHERE deliver_time IS NULL;
