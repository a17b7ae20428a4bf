-- The orchestrator's schema: the durable run queue, each run's progress events, and the file
-- snapshots fragment previews are served from.
CREATE SCHEMA IF NOT EXISTS orchestrator;

-- Fencing tokens: every lease a worker takes gets a new one, so a worker that lost its lease
-- (and does not know it yet) can no longer write to the run.
CREATE SEQUENCE orchestrator.lease_tokens;

CREATE TABLE orchestrator.runs (
  id                uuid PRIMARY KEY,
  project_id        uuid NOT NULL,
  -- StartRun is idempotent on the message that asked for the run.
  message_id        uuid NOT NULL UNIQUE,
  prompt            text NOT NULL,
  state             smallint NOT NULL,  -- qai.orchestrator.v1.Run.State
  attempt           integer NOT NULL DEFAULT 0,
  iteration         integer NOT NULL DEFAULT 0,
  max_iterations    integer NOT NULL,
  create_time       timestamptz NOT NULL DEFAULT clock_timestamp(),
  start_time        timestamptz,
  end_time          timestamptz,
  error             text NOT NULL DEFAULT '',
  result_message_id uuid,
  sandbox_url       text NOT NULL DEFAULT '',
  last_sequence     bigint NOT NULL DEFAULT 0,
  cancel_requested  boolean NOT NULL DEFAULT false,
  -- The queue: a QUEUED run is due at next_attempt_time; runs of a project go in queue_seq
  -- order, one at a time.
  next_attempt_time timestamptz NOT NULL DEFAULT now(),
  queue_seq         bigserial,
  -- The lease of a RUNNING run: who holds it, its fencing token, and when it lapses unless
  -- renewed by the holder's heartbeat.
  lease_owner       text NOT NULL DEFAULT '',
  lease_token       bigint NOT NULL DEFAULT 0,
  lease_expire_time timestamptz
);
-- Pages of a project's runs, newest first.
CREATE INDEX runs_project_page ON orchestrator.runs (project_id, create_time DESC, id DESC);
-- The queue's lookups: due runs, a project's active runs, lapsed leases.
CREATE INDEX runs_queued ON orchestrator.runs (queue_seq) WHERE state = 1;
CREATE INDEX runs_project_queued ON orchestrator.runs (project_id, queue_seq) WHERE state = 1;
CREATE INDEX runs_leases ON orchestrator.runs (lease_expire_time) WHERE state = 2;
CREATE INDEX runs_project_active ON orchestrator.runs (project_id) WHERE state IN (1, 2);
-- At most one RUNNING run per project (the sandbox is the project's).
CREATE UNIQUE INDEX runs_one_running_per_project ON orchestrator.runs (project_id) WHERE state = 2;

-- A run's progress, gap-free per run: written in the transaction of the change it reports,
-- with the sequence taken from runs.last_sequence under that row's lock.
CREATE TABLE orchestrator.run_events (
  run_id      uuid NOT NULL REFERENCES orchestrator.runs (id) ON DELETE CASCADE,
  sequence    bigint NOT NULL,
  event       bytea NOT NULL,  -- a serialized qai.orchestrator.v1.RunEvent
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, sequence)
);

-- The files a successful run left, served by the preview server for as long as they are kept.
CREATE TABLE orchestrator.snapshots (
  id          uuid PRIMARY KEY,
  run_id      uuid NOT NULL REFERENCES orchestrator.runs (id) ON DELETE CASCADE,
  project_id  uuid NOT NULL,
  files       jsonb NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_run ON orchestrator.snapshots (run_id);
CREATE INDEX snapshots_project ON orchestrator.snapshots (project_id);
