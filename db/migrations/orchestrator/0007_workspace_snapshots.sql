-- A project's workspace state moves to qai-sandbox: the orchestrator keeps only which snapshot
-- (sandbox.snapshots) holds it. Each saved state gets the id of the snapshot it becomes; the
-- sandbox schema's first migration copies the files there and drops this table's copy.
ALTER TABLE orchestrator.workspaces ADD COLUMN snapshot_id uuid;
UPDATE orchestrator.workspaces SET snapshot_id = gen_random_uuid();
ALTER TABLE orchestrator.workspaces
  ALTER COLUMN snapshot_id SET NOT NULL,
  ALTER COLUMN files DROP NOT NULL;
