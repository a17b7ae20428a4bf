-- pgbench script: the one statement of GetProject, exactly as services/projects/store.cc
-- (GetStatement) prepares it. The project id comes from `pgbench -D id=<uuid>`.
SELECT id::text, name, display_name, owner,
       (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM update_time) * 1000000)::bigint,
       version, COALESCE(latest_run_id::text, ''), latest_run_state
  FROM projects.projects
 WHERE id = CAST(:id AS uuid) AND delete_time IS NULL;
