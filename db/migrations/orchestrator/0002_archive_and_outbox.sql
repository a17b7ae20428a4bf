-- Finished runs' events are compacted out of the hot event table (see RunStore::ArchiveEvents),
-- and a failed run's ERROR message is announced to MessageService through an outbox written
-- in the transaction that fails the run.

-- One row per archived run: events[i] is the event with sequence i, written at times[i].
CREATE TABLE orchestrator.run_event_archives (
  run_id uuid PRIMARY KEY REFERENCES orchestrator.runs (id) ON DELETE CASCADE,
  events bytea[] NOT NULL,
  times  timestamptz[] NOT NULL
);
ALTER TABLE orchestrator.runs ADD COLUMN events_archived boolean NOT NULL DEFAULT false;
-- Finished runs whose events still sit in run_events, oldest first.
CREATE INDEX runs_to_archive ON orchestrator.runs (end_time) WHERE state IN (3, 4, 5) AND NOT events_archived;

-- Transactional outbox (see common/outbox.h), in the shape of projects.outbox.
CREATE TABLE orchestrator.outbox (
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
CREATE INDEX outbox_pending ON orchestrator.outbox (next_attempt_time) WHERE deliver_time IS NULL;
CREATE INDEX outbox_order ON orchestrator.outbox (ordering_key, seq) WHERE deliver_time IS NULL;
CREATE INDEX outbox_delivered ON orchestrator.outbox (deliver_time) WHERE deliver_time IS NOT NULL;
CREATE INDEX outbox_undelivered_seq ON orchestrator.outbox (seq) WHERE deliver_time IS NULL;
