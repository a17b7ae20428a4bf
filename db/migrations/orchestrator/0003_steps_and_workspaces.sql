-- Step-level resume. A run's journal holds each model answer and each tool result (with the
-- file changes it made), written in the transaction of its event, so a run taken over by
-- another worker continues after its last step: finished model calls are not sent again, and
-- the workspace is rebuilt from the project's last state plus the journal. The journal goes
-- when the run ends.
CREATE TABLE orchestrator.run_steps (
  run_id uuid NOT NULL REFERENCES orchestrator.runs (id) ON DELETE CASCADE,
  step   integer NOT NULL,
  data   jsonb NOT NULL,
  PRIMARY KEY (run_id, step)
);

-- The files a project's workspace holds after its last finished run, written with that run's
-- end. A worker whose copy of the workspace is not known to be this state rebuilds it from here.
CREATE TABLE orchestrator.workspaces (
  project_id  uuid PRIMARY KEY,
  run_id      uuid NOT NULL,
  files       jsonb NOT NULL,
  update_time timestamptz NOT NULL DEFAULT now()
);
