-- Restores: a run that brings back a version instead of asking a model (RestoreVersion). It
-- queues like a prompt, in the project's one line of runs, and makes the next version.
--   restore_version: the version it brings back; NULL for an agent's run.
--   request_key: "<principal>:<request_id>" of the RestoreVersion that asked for it, so a
--   repeat finds this run instead of queueing another.
-- A restore answers no USER message: its message_id is NULL.
ALTER TABLE orchestrator.runs
  ADD COLUMN restore_version integer,
  ADD COLUMN request_key text,
  ALTER COLUMN message_id DROP NOT NULL;
CREATE UNIQUE INDEX runs_request_key ON orchestrator.runs (request_key)
  WHERE request_key IS NOT NULL;
