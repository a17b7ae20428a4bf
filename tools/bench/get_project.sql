-- pgbench script: GetProject's one statement, as services/projects/store.cc prepares it
-- (PipelineStatements, "projects.get"). The project id comes from `pgbench -D id=<uuid>`.
SELECT id::text AS id, name AS name, display_name AS display_name, owner AS owner,
       (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint AS create_us,
       (EXTRACT(EPOCH FROM update_time) * 1000000)::bigint AS update_us,
       version AS version, COALESCE(latest_run_id::text, '') AS run_id, latest_run_state AS run_state,
       delete_time IS NULL AS live
  FROM projects.projects
 WHERE id = CAST(:id AS uuid);
