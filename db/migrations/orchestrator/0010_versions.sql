-- Versions: every successful run makes one (1, 2, 3... per project), and so does a restore.
-- A version names the run and the ASSISTANT message it came from, the snapshot in qai-sandbox
-- that holds its files (its preview), its title and its author; rows are never changed and go
-- only with their project's purge. A new number is the project's last + 1, taken under the lock
-- of the project's workspace row (RunStore), so numbers have no gaps and no repeats.
CREATE TABLE orchestrator.versions (
  project_id    uuid NOT NULL,
  number        integer NOT NULL,
  run_id        uuid NOT NULL UNIQUE,
  message_id    uuid,
  snapshot_id   uuid NOT NULL,
  sandbox_url   text NOT NULL,
  title         text NOT NULL DEFAULT '',
  author        text NOT NULL DEFAULT '',
  restored_from integer,  -- the version a restore brought back; NULL for a run's own work
  create_time   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, number)
);

-- A failed or cancelled run's draft: what it had changed, kept as a snapshot (and its preview)
-- while the project's state stays its last version.
ALTER TABLE orchestrator.runs ADD COLUMN draft_snapshot_id uuid, ADD COLUMN draft_url text NOT NULL DEFAULT '';

-- The successful runs so far become the first versions, in the order they ended (their titles
-- were not kept by the orchestrator: empty). A run's snapshot is the last segment of its
-- preview URL.
INSERT INTO orchestrator.versions (project_id, number, run_id, message_id, snapshot_id,
                                   sandbox_url, author, create_time)
  SELECT project_id, row_number() OVER (PARTITION BY project_id ORDER BY end_time, id), id,
         result_message_id,
         CAST(substring(sandbox_url FROM '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/?$') AS uuid),
         sandbox_url, author, end_time
  FROM orchestrator.runs
  WHERE state = 3
    AND sandbox_url ~ '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/?$';
