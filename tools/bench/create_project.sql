-- pgbench script: the transaction of CreateProject without a request_id, as
-- services/projects/store.cc (InsertStatement) and common/outbox.cc (EnqueueOutbox) run it.
-- Values the service computes in C++ (project id, slug, outbox id, request id, payload) are
-- made here instead: UUIDs by gen_random_uuid(), the name from two random numbers, and a
-- fixed payload the size of the CreateMessageRequest a loadgen call makes (85 bytes).
--
-- One deliberate difference: the outbox row gets next_attempt_time 'infinity', so that the
-- running qai-projects' outbox relay never picks it up. Otherwise the relay would deliver
-- pgbench's rows during the measurement and pgbench would no longer time the SQL alone. The
-- row is the same size and enters the same indexes.
\set a random(0, 2147483647)
\set b random(0, 2147483647)
BEGIN;
INSERT INTO projects.projects (id, name, display_name, owner)
  VALUES (gen_random_uuid(), 'bench-' || CAST(:a AS text) || '-' || CAST(:b AS text), '', 'bench-user')
  ON CONFLICT (name) DO NOTHING
  RETURNING id::text, name, display_name, owner,
            (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
            (EXTRACT(EPOCH FROM update_time) * 1000000)::bigint,
            version, COALESCE(latest_run_id::text, ''), latest_run_state;
INSERT INTO projects.outbox (id, topic, payload, trace_request_id, next_attempt_time)
  VALUES (gen_random_uuid(), 'messages.CreateMessage',
          decode('CiQwYjdlNmMxYS0zZjVkLTRjMmUtOWE4Yi0xZDJlM2Y0YTViNmMSLUJ1aWxkIGEgb25lLXBhZ2Ugc2l0ZSBmb3IgYSBiZW5jaG1hcmsgYmFrZXJ5Lg==', 'base64'),
          CAST(gen_random_uuid() AS text), 'infinity');
COMMIT;
