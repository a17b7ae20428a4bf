CREATE SCHEMA IF NOT EXISTS sandbox;

-- Snapshots: a workspace's text files at one moment, immutable; previews serve them at
-- <QAI_PREVIEW_BASE_URL>/<id>/. run_id names the run that took it (no foreign key: runs are the
-- orchestrator's).
CREATE TABLE sandbox.snapshots (
  id          uuid PRIMARY KEY,
  project_id  uuid NOT NULL,
  run_id      uuid,
  files       jsonb NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_project ON sandbox.snapshots (project_id);

-- The user each project's commands run as (when qai-sandbox runs as root): allocated once per
-- project from a sequence, so no two projects ever share one, and never reused.
CREATE SEQUENCE sandbox.user_index MINVALUE 0 START 0;
CREATE TABLE sandbox.users (
  project_id  uuid PRIMARY KEY,
  uid         bigint NOT NULL UNIQUE,
  create_time timestamptz NOT NULL DEFAULT now()
);

-- Purged projects: nothing is stored for them again, not even by a call already under way.
CREATE TABLE sandbox.purged_projects (
  project_id uuid PRIMARY KEY,
  purge_time timestamptz NOT NULL DEFAULT now()
);

-- The one-time move of what the orchestrator kept before this service existed, so an upgraded
-- deployment keeps every preview URL and every project's last files: its preview snapshots
-- (same ids), and each project's saved workspace as the snapshot orchestrator/0007 named.
DO $$
BEGIN
  IF to_regclass('orchestrator.snapshots') IS NOT NULL THEN
    INSERT INTO sandbox.snapshots (id, project_id, run_id, files, create_time)
      SELECT id, project_id, run_id, files, create_time FROM orchestrator.snapshots
      ON CONFLICT (id) DO NOTHING;
    DROP TABLE orchestrator.snapshots;
  END IF;
  IF EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = 'orchestrator' AND table_name = 'workspaces' AND column_name = 'files') THEN
    INSERT INTO sandbox.snapshots (id, project_id, run_id, files, create_time)
      SELECT snapshot_id, project_id, run_id, files, update_time FROM orchestrator.workspaces
      WHERE files IS NOT NULL
      ON CONFLICT (id) DO NOTHING;
    ALTER TABLE orchestrator.workspaces DROP COLUMN files;
  END IF;
END $$;
