-- Forks: a project made from another's version (ProjectService.ForkProject) starts with a run
-- that restores that version into its own workspace.
--   runs.restore_project_id: the project whose version a restore brings (NULL: its own).
--   versions.forked_from_project_id: a fork's first version came from that project's version
--   restored_from (NULL: from this project).
ALTER TABLE orchestrator.runs ADD COLUMN restore_project_id uuid;
ALTER TABLE orchestrator.versions ADD COLUMN forked_from_project_id uuid;
