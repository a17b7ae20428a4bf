-- The messages service's schema: each project's conversation, the agent's fragments,
-- idempotency records, purged-project tombstones and the outbox.
CREATE SCHEMA IF NOT EXISTS messages;

CREATE TABLE messages.messages (
  id          uuid PRIMARY KEY,
  project_id  uuid NOT NULL,
  -- The project's owner, copied from ProjectService when the message is written: who may read it.
  owner       text NOT NULL,
  -- The principal a USER message is attributed to (the project's owner when a service relays
  -- it); '' for ASSISTANT messages.
  author      text NOT NULL DEFAULT '',
  content     text NOT NULL,
  role        smallint NOT NULL,  -- qai.messages.v1.Message.Role
  type        smallint NOT NULL,  -- qai.messages.v1.Message.Type
  -- USER: the run the message started (filled when StartRun answers); ASSISTANT: the run that
  -- wrote it.
  run_id      uuid,
  create_time timestamptz NOT NULL DEFAULT clock_timestamp(),
  update_time timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Keyset pages of a project's conversation, oldest first.
CREATE INDEX messages_project_page ON messages.messages (project_id, create_time, id);
-- One ASSISTANT message per run: RecordAgentResult is idempotent on run_id.
CREATE UNIQUE INDEX messages_one_result_per_run ON messages.messages (run_id) WHERE role = 2;

CREATE TABLE messages.fragments (
  id          uuid PRIMARY KEY,
  message_id  uuid NOT NULL UNIQUE REFERENCES messages.messages (id) ON DELETE CASCADE,
  sandbox_url text NOT NULL DEFAULT '',
  title       text NOT NULL DEFAULT '',
  -- path -> content of every generated file
  files       jsonb NOT NULL DEFAULT '{}',
  summary     text NOT NULL DEFAULT '',
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now()
);

-- One row per (principal, request_id) of a mutation: a repeat finds the first result.
CREATE TABLE messages.idempotency (
  principal   text NOT NULL,
  request_id  uuid NOT NULL,
  method      text NOT NULL,
  resource_id uuid NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (principal, request_id)
);

-- Projects whose messages were purged (the project was deleted): nothing is written for them
-- again, even by a CreateMessage that checked the project just before it was deleted.
CREATE TABLE messages.purged_projects (
  project_id  uuid PRIMARY KEY,
  purge_time  timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox (see common/outbox.h), in the shape of projects.outbox.
CREATE TABLE messages.outbox (
  id                uuid PRIMARY KEY,
  topic             text NOT NULL,
  payload           bytea NOT NULL,
  trace_request_id  text NOT NULL DEFAULT '',
  create_time       timestamptz NOT NULL DEFAULT now(),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_time timestamptz NOT NULL DEFAULT now(),
  last_error        text NOT NULL DEFAULT '',
  deliver_time      timestamptz,
  ordering_key      text NOT NULL DEFAULT '',
  seq               bigserial
);
CREATE INDEX outbox_pending ON messages.outbox (next_attempt_time) WHERE deliver_time IS NULL;
CREATE INDEX outbox_order ON messages.outbox (ordering_key, seq) WHERE deliver_time IS NULL;
CREATE INDEX outbox_delivered ON messages.outbox (deliver_time) WHERE deliver_time IS NOT NULL;
