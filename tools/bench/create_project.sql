-- pgbench script: CreateProject's one statement (no request id), as services/projects/store.cc
-- prepares it (PipelineStatements, "projects.create"). Values the service computes in C++
-- (project id, slug, outbox id, payload, trace id) are made here: UUIDs by gen_random_uuid(),
-- the name from two random numbers, a fixed payload the size of a loadgen call's
-- CreateMessageRequest.
--
-- One deliberate difference: the outbox row gets next_attempt_time 'infinity', so that the
-- running qai-projects' relay never delivers pgbench's rows while pgbench is being timed. The
-- row has the same size and enters the same indexes.
\set a random(0, 2147483647)
\set b random(0, 2147483647)
WITH claim AS (
  INSERT INTO projects.idempotency (principal, request_id, method, resource_id)
  SELECT CAST('bench-user' AS text), CAST(NULL AS uuid), 'CreateProject', gen_random_uuid()
  WHERE CAST(NULL AS uuid) IS NOT NULL ON CONFLICT DO NOTHING RETURNING 1
), project AS (
  INSERT INTO projects.projects (id, name, display_name, owner)
  SELECT gen_random_uuid(), CAST('bench-' || :a || '-' || :b AS text), CAST('' AS text), CAST('bench-user' AS text)
  WHERE CAST(NULL AS uuid) IS NULL OR EXISTS (SELECT 1 FROM claim)
  RETURNING id::text AS id, name AS name, display_name AS display_name, owner AS owner,
            (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint AS create_us,
            (EXTRACT(EPOCH FROM update_time) * 1000000)::bigint AS update_us,
            version AS version, COALESCE(latest_run_id::text, '') AS run_id, latest_run_state AS run_state
), announce AS (
  INSERT INTO projects.outbox (id, topic, payload, trace_request_id, ordering_key, next_attempt_time)
  SELECT gen_random_uuid(), CAST('messages.CreateMessage' AS text),
         decode(CAST('CiQwYjdlNmMxYS0zZjVkLTRjMmUtOWE4Yi0xZDJlM2Y0YTViNmMSLUJ1aWxkIGEgb25lLXBhZ2Ugc2l0ZSBmb3IgYSBiZW5jaG1hcmsgYmFrZXJ5Lg==' AS text), 'base64'),
         CAST(gen_random_uuid() AS text), project.id, 'infinity'
  FROM project
) SELECT * FROM project;
