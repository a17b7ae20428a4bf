-- pgbench script: the SQL of one run through qai-orchestrator's queue with the builtin's
-- [[instant]] model, statement for statement as services/orchestrator/store/run_store.cc sends them
-- (it mirrors run_store.cc: keep the two in step). One pgbench "transaction" is one whole run,
-- so tps is runs per second:
--   StartRun's transaction (RunStore::Start, with the queued event), a worker's claim (Claim,
--   with the started event), the five appends of the run's one iteration (Append, each one
--   statement: iteration_started with the iteration number and its journal step; model_output,
--   the streamed text, without a step; tool_call with two steps, the model's answer and the
--   call; tool_result and files_changed in one batch with the tool's step; iteration_finished
--   with its step) and the end (PostResult: the lease ends, the project's last snapshot is
--   recorded, the result goes to the outbox; then ResultStored, once the relay delivered it: the
--   succeeded event, the journal dropped); start, claim and end each announce the run's state through the outbox
--   (RunStore::Announce). And qai-sandbox's SQL for the same run, as services/sandbox/store.cc
--   and services/sandbox/replica_store.cc send it: where the project lives (ReplicaStore::Locate,
--   at LocateWorkspace), its claim and user (ReplicaStore::Claim, SandboxStore::UserFor, at
--   OpenWorkspace) and the snapshot (SaveSnapshot, at CreateSnapshot). Each transaction is BEGIN ... COMMIT as DbPool sends it.
-- Run it with -M extended: SOCI sends these as one-off statements with bound parameters, parsed
-- at each execution, which is what pgbench's extended mode does.
--
-- Small differences: the ids come from one extra SELECT (the service makes them in C++);
-- NOTIFY payloads are built with concat() (in C++ there); values the service binds but pgbench
-- cannot hold (strings, NULL) are written in place; the event payloads are those of a real
-- [[instant]] run, fixed here (their sizes are what matters); the claim's RETURNING goes
-- through a CTE so that a claim that finds nothing (when clients race for the same runs) skips
-- the run instead of aborting the client. What a run does besides SQL is not here: the calls to
-- MessageService (History, RecordAgentResult, and their own SQL), the outbox relays' own
-- statements, the workspace, gRPC.
--
-- Rows are marked with the prompt 'pgbench run [[instant]]' so they can be deleted afterwards.
\set max 15
\set tok 0
\set us 30000000
\set st 3
-- The ids the service makes in C++.
SELECT gen_random_uuid()::text AS run_id, gen_random_uuid()::text AS project_id,
       gen_random_uuid()::text AS message_id, s::text AS snapshot_id,
       'http://localhost:8080/' || s || '/' AS url, gen_random_uuid()::text AS result_id
  FROM gen_random_uuid() AS s \gset

-- StartRun: RunStore::Start, with the queued event.
BEGIN;
SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:project_id, 11));
SELECT id::text, project_id::text, message_id::text, prompt, state::int, attempt, iteration, max_iterations,
       (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
       COALESCE((EXTRACT(EPOCH FROM start_time) * 1000000)::bigint, 0),
       COALESCE((EXTRACT(EPOCH FROM end_time) * 1000000)::bigint, 0), error,
       COALESCE(result_message_id::text, ''), sandbox_url, last_sequence, cancel_requested::int, prompt_tokens,
       completion_tokens, model, timeout_us, steps, author
  FROM orchestrator.runs
 WHERE message_id = CAST(:message_id AS uuid);
-- The project's active runs, for its cap (the benchmark's StartRuns name no author).
SELECT count(*) FROM orchestrator.runs WHERE project_id = CAST(:project_id AS uuid) AND state IN (1, 2);
INSERT INTO orchestrator.runs (id, project_id, message_id, prompt, state, max_iterations, model, timeout_us, author)
VALUES (CAST(:run_id AS uuid), CAST(:project_id AS uuid), CAST(:message_id AS uuid), 'pgbench run [[instant]]', 1, :max,
        'builtin', 1800000000, '');
\set n 1
\set j 0
\set fenced 0
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:run_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"UgA="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:run_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
-- RunStore::Announce: the state change for ProjectService.RecordLatestRun, through the outbox
-- (the run's project and create time came back from the append).
INSERT INTO orchestrator.outbox (id, topic, payload, trace_request_id, ordering_key)
VALUES (gen_random_uuid(), 'projects.RecordLatestRun', decode('CiQ2ZjFjMWMzZS04YTUyLTRkOGUtOWEzNi0yYjFiMmMwZTdkMTESNAokNmYxYzFjM2UtOGE1Mi00ZDhlLTlhMzYtMmIxYjJjMGU3ZDExEgxTVEFURV9RVUVVRUQaBgj1zaTKBiAB', 'base64'),
        'pgbench', concat('latest_run:', CAST(:project_id AS text)));
SELECT pg_notify('qai_runs', CAST(:run_id AS text));
SELECT id::text, project_id::text, message_id::text, prompt, state::int, attempt, iteration, max_iterations,
       (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
       COALESCE((EXTRACT(EPOCH FROM start_time) * 1000000)::bigint, 0),
       COALESCE((EXTRACT(EPOCH FROM end_time) * 1000000)::bigint, 0), error,
       COALESCE(result_message_id::text, ''), sandbox_url, last_sequence, cancel_requested::int, prompt_tokens,
       completion_tokens, model, timeout_us, steps, author
  FROM orchestrator.runs WHERE id = CAST(:run_id AS uuid);
COMMIT;

-- A worker: RunStore::Claim, with the started event. The RETURNING goes through a CTE so
-- that a claim that finds nothing sets got = 0 instead of aborting the client.
BEGIN;
SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true);
WITH next AS (
  SELECT r.id FROM orchestrator.runs r
  WHERE r.state = 1 AND r.next_attempt_time <= now()
    AND NOT EXISTS (SELECT 1 FROM orchestrator.runs a WHERE a.project_id = r.project_id AND a.state = 2)
    AND NOT EXISTS (SELECT 1 FROM orchestrator.runs e WHERE e.project_id = r.project_id
                    AND e.state = 1 AND e.queue_seq < r.queue_seq)
  ORDER BY r.queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED),
claimed AS (
 UPDATE orchestrator.runs r SET state = 2, attempt = r.attempt + 1,
   start_time = COALESCE(r.start_time, now()), lease_owner = 'pgbench/0',
   lease_token = nextval('orchestrator.lease_tokens'),
   lease_expire_time = now() + :us * interval '1 microsecond'
 FROM next WHERE r.id = next.id RETURNING r.id::text, r.project_id::text, r.attempt, r.lease_token)
SELECT count(*) AS got, COALESCE(max(id), '') AS claimed_id, COALESCE(max(project_id), '') AS claimed_project,
       COALESCE(max(lease_token), 0) AS tok
  FROM claimed \gset
\if :got
\set n 1
\set j 0
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"WgIIAQ=="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
-- RunStore::Announce: the state change for ProjectService.RecordLatestRun, through the outbox
-- (the run's project and create time came back from the append).
INSERT INTO orchestrator.outbox (id, topic, payload, trace_request_id, ordering_key)
VALUES (gen_random_uuid(), 'projects.RecordLatestRun', decode('CiQ2ZjFjMWMzZS04YTUyLTRkOGUtOWEzNi0yYjFiMmMwZTdkMTESNQokNmYxYzFjM2UtOGE1Mi00ZDhlLTlhMzYtMmIxYjJjMGU3ZDExEg1TVEFURV9SVU5OSU5HGgYI9c2kygYgAQ==', 'base64'),
        'pgbench', concat('latest_run:', CAST(:claimed_project AS text)));
SELECT id::text, project_id::text, message_id::text, prompt, state::int, attempt, iteration, max_iterations,
       (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
       COALESCE((EXTRACT(EPOCH FROM start_time) * 1000000)::bigint, 0),
       COALESCE((EXTRACT(EPOCH FROM end_time) * 1000000)::bigint, 0), error,
       COALESCE(result_message_id::text, ''), sandbox_url, last_sequence, cancel_requested::int, prompt_tokens,
       completion_tokens, model, timeout_us, steps, author
  FROM orchestrator.runs WHERE id = CAST(:claimed_id AS uuid);
COMMIT;

-- RunWorker's preparation: the run's journal (empty on a first attempt) and the project's
-- workspace state (RunStore::Steps, RunStore::WorkspaceOf without files).
SELECT data::text FROM orchestrator.run_steps WHERE run_id = CAST(:run_id AS uuid) ORDER BY step;
SELECT run_id::text, snapshot_id::text FROM orchestrator.workspaces
 WHERE project_id = CAST(:project_id AS uuid);
-- qai-sandbox's LocateWorkspace (ReplicaStore::Locate: the project's live replica, none for a
-- new project; the live replica that ranks first; its assignment) and OpenWorkspace's claim
-- (ReplicaStore::Claim), against the replica qai-sandbox registered for the benchmark.
SELECT r.id, r.name, r.address FROM sandbox.assignments a JOIN sandbox.replicas r ON r.id = a.replica_id
 WHERE a.project_id = CAST(:project_id AS uuid) AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
   AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = 1363233107 AND l.objid = CAST(r.id AS oid) AND l.objsubid = 2);
SELECT count(*) FROM sandbox.purged_projects WHERE project_id = CAST(:project_id AS uuid);
SELECT r.id AS replica_id, r.name, r.address FROM sandbox.replicas r WHERE EXISTS (SELECT 1 FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = 1363233107 AND l.objid = CAST(r.id AS oid) AND l.objsubid = 2)
 ORDER BY md5(:project_id || '/' || r.name) DESC, r.id DESC LIMIT 1 \gset
WITH v AS (SELECT CAST(:project_id AS uuid) AS project_id, CAST(:replica_id AS integer) AS replica_id)
INSERT INTO sandbox.assignments AS a (project_id, replica_id)
SELECT v.project_id, v.replica_id FROM v WHERE NOT EXISTS
  (SELECT 1 FROM sandbox.purged_projects pp WHERE pp.project_id = v.project_id)
ON CONFLICT (project_id) DO UPDATE SET replica_id = EXCLUDED.replica_id, assign_time = now()
  WHERE a.replica_id = EXCLUDED.replica_id OR NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
   AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = 1363233107 AND l.objid = CAST(a.replica_id AS oid) AND l.objsubid = 2)
RETURNING replica_id;
SELECT r.id, r.name, r.address FROM sandbox.assignments a JOIN sandbox.replicas r ON r.id = a.replica_id
 WHERE a.project_id = CAST(:project_id AS uuid) AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
   AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = 1363233107 AND l.objid = CAST(r.id AS oid) AND l.objsubid = 2);
-- qai-sandbox's OpenWorkspace: SandboxStore::UserFor (a new project: its uid is allocated).
BEGIN;
SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended(:project_id, 21));
SELECT count(*) FROM sandbox.purged_projects WHERE project_id = CAST(:project_id AS uuid);
SELECT uid FROM sandbox.users WHERE project_id = CAST(:project_id AS uuid);
INSERT INTO sandbox.users (project_id, uid) VALUES (CAST(:project_id AS uuid), 1000000000 + nextval('sandbox.user_index'))
    ON CONFLICT (project_id) DO NOTHING;
SELECT uid FROM sandbox.users WHERE project_id = CAST(:project_id AS uuid);
COMMIT;

-- The agent's one iteration: RunStore::Append, five times (AppendEvents: one statement each).
-- iteration_started
BEGIN;
\set n 1
\set it 1
\set j 1
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(:it AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"YgIIAQ=="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{"eyJraW5kIjoic3RhcnQiLCJpdGVyYXRpb24iOjF9"}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
COMMIT;
-- model_output
BEGIN;
\set n 1
\set j 0
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"am4KbFdyaXRpbmcgdGhlIHBhZ2UsIGFuZCBkb25lLgo8dGFza19zdW1tYXJ5PkJ1aWx0IGEgb25lLWZpbGUgQmVuY2ggUHJvamVjdCAxIHBhZ2UgKGluZGV4Lmh0bWwpLjwvdGFza19zdW1tYXJ5Pg=="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
COMMIT;
-- tool_call
BEGIN;
\set n 1
\set j 2
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"cvIBCgZjYWxsXzESE2NyZWF0ZU9yVXBkYXRlRmlsZXMa0gF7ImZpbGVzIjpbeyJjb250ZW50IjoiPCFET0NUWVBFIGh0bWw+XG48aHRtbCBsYW5nPVwiZW5cIj5cbjxoZWFkPlxuPG1ldGEgY2hhcnNldD1cInV0Zi04XCI+XG48dGl0bGU+QmVuY2ggUHJvamVjdCAxPC90aXRsZT5cbjwvaGVhZD5cbjxib2R5PlxuPGgxPkJlbmNoIFByb2plY3QgMTwvaDE+XG48L2JvZHk+XG48L2h0bWw+XG4iLCJwYXRoIjoiaW5kZXguaHRtbCJ9XX0="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{"eyJraW5kIjoibW9kZWwiLCJpdGVyYXRpb24iOjEsInRleHQiOiJXcml0aW5nIHRoZSBwYWdlLCBhbmQgZG9uZS5cbjx0YXNrX3N1bW1hcnk+QnVpbHQgYSBvbmUtZmlsZSBCZW5jaCBQcm9qZWN0IDEgcGFnZSAoaW5kZXguaHRtbCkuPC90YXNrX3N1bW1hcnk+IiwidG9vbF9jYWxscyI6W3siaWQiOiJjYWxsXzEiLCJuYW1lIjoiY3JlYXRlT3JVcGRhdGVGaWxlcyIsImFyZ3VtZW50cyI6IntcImZpbGVzXCI6W119In1dfQ==","eyJraW5kIjoiY2FsbCIsImNhbGxfaWQiOiJjYWxsXzEifQ=="}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
COMMIT;
-- tool_result, files_changed
BEGIN;
\set n 2
\set j 1
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"ei8KBmNhbGxfMRITY3JlYXRlT3JVcGRhdGVGaWxlcxoQd3JvdGUgaW5kZXguaHRtbA==","ggEMCgppbmRleC5odG1s"}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{"eyJraW5kIjoidG9vbCIsImNhbGxfaWQiOiJjYWxsXzEiLCJvdXRwdXQiOiJ3cm90ZSBpbmRleC5odG1sIiwid3JpdHRlbiI6WyJpbmRleC5odG1sIl0sImNoYW5nZXMiOnsiaW5kZXguaHRtbCI6IjwhRE9DVFlQRSBodG1sPlxuPGh0bWwgbGFuZz1cImVuXCI+XG48aGVhZD5cbjxtZXRhIGNoYXJzZXQ9XCJ1dGYtOFwiPlxuPHRpdGxlPkJlbmNoIFByb2plY3QgMTwvdGl0bGU+XG48L2hlYWQ+XG48Ym9keT5cbjxoMT5CZW5jaCBQcm9qZWN0IDE8L2gxPlxuPC9ib2R5PlxuPC9odG1sPlxuIn19"}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
COMMIT;
-- iteration_finished
BEGIN;
\set n 1
\set j 1
\set fenced 1
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"igECCAE="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{"eyJraW5kIjoiZW5kIiwiaXRlcmF0aW9uIjoxfQ=="}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
COMMIT;

-- qai-sandbox's CreateSnapshot: SandboxStore::SaveSnapshot (the manifest of index.html, its
-- blob (sent here every time, as for a new file; it is stored once), and the project's use of
-- it), then the snapshot read back (ReadSnapshot: its row, then its blobs).
BEGIN;
SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended(:claimed_project, 21));
SELECT count(*) FROM sandbox.purged_projects WHERE project_id = CAST(:claimed_project AS uuid);
SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended('sandbox.blobs', 22));
INSERT INTO sandbox.snapshots (id, project_id, run_id, manifest)
VALUES (CAST(:snapshot_id AS uuid), CAST(:claimed_project AS uuid), CAST(:claimed_id AS uuid),
        decode('aW5kZXguaHRtbADcLo7ADN5xb5OS3CB1XbYTWkpE9IsjLJDV7ggazmk+9g==', 'base64'))
    ON CONFLICT (id) DO NOTHING RETURNING 1;
SELECT encode(hash, 'base64') FROM sandbox.blobs WHERE hash IN
  (SELECT decode(h, 'base64') FROM unnest(CAST('{"3C6OwAzecW+TktwgdV22E1pKRPSLIyyQ1e4IGs5pPvY="}' AS text[])) h);
INSERT INTO sandbox.blobs (hash, size, content)
SELECT decode(h, 'base64'), octet_length(decode(c, 'base64')), decode(c, 'base64')
  FROM unnest(CAST('{"3C6OwAzecW+TktwgdV22E1pKRPSLIyyQ1e4IGs5pPvY="}' AS text[]),
              CAST('{"PCFET0NUWVBFIGh0bWw+CjxodG1sIGxhbmc9ImVuIj4KPGhlYWQ+CjxtZXRhIGNoYXJzZXQ9InV0Zi04Ij4KPHRpdGxlPkJlbmNoIFByb2plY3QgMTwvdGl0bGU+CjwvaGVhZD4KPGJvZHk+CjxoMT5CZW5jaCBQcm9qZWN0IDE8L2gxPgo8L2JvZHk+CjwvaHRtbD4K"}' AS text[]))
       AS t(h, c) ON CONFLICT (hash) DO NOTHING;
INSERT INTO sandbox.project_blobs (project_id, hash)
SELECT CAST(:claimed_project AS uuid), decode(h, 'base64')
  FROM unnest(CAST('{"3C6OwAzecW+TktwgdV22E1pKRPSLIyyQ1e4IGs5pPvY="}' AS text[])) h ON CONFLICT DO NOTHING;
SELECT project_id::text, COALESCE(run_id::text, ''), (EXTRACT(EPOCH FROM create_time) * 1000000)::bigint,
       encode(manifest, 'base64')
  FROM sandbox.snapshots WHERE id = CAST(:snapshot_id AS uuid);
SELECT encode(hash, 'base64'), encode(content, 'base64') FROM sandbox.blobs WHERE hash IN
  (SELECT decode(h, 'base64') FROM unnest(CAST('{"3C6OwAzecW+TktwgdV22E1pKRPSLIyyQ1e4IGs5pPvY="}' AS text[])) h);
COMMIT;

-- RunStore::PostResult: the worker's lease ends, the project's last snapshot is recorded and
-- the result goes to the outbox (its payload here is a stand-in of a real one's size).
BEGIN;
UPDATE orchestrator.runs SET result_pending = true, lease_owner = '', lease_expire_time = NULL,
       lease_token = nextval('orchestrator.lease_tokens')
 WHERE id = CAST(:claimed_id AS uuid) AND lease_token = :tok AND state = 2 RETURNING project_id::text;
INSERT INTO orchestrator.workspaces (project_id, run_id, snapshot_id)
VALUES (CAST(:claimed_project AS uuid), CAST(:claimed_id AS uuid), CAST(:snapshot_id AS uuid))
    ON CONFLICT (project_id) DO UPDATE SET run_id = EXCLUDED.run_id, snapshot_id = EXCLUDED.snapshot_id,
                                           update_time = now();
INSERT INTO orchestrator.outbox (id, topic, payload, trace_request_id, ordering_key)
VALUES (gen_random_uuid(), 'messages.RecordRunResult', convert_to(repeat('r', 600), 'UTF8'),
        'pgbench', CAST(:claimed_project AS text));
COMMIT;

-- RunStore::ResultStored, once the relay delivered the result, with the succeeded event.
BEGIN;
SELECT result_pending::int FROM orchestrator.runs
 WHERE id = CAST(:claimed_id AS uuid) AND state = 2 FOR UPDATE;
\set n 1
\set j 0
\set fenced 0
WITH r AS (UPDATE orchestrator.runs SET last_sequence = last_sequence + :n,
                   iteration = COALESCE(CAST(NULL AS integer), iteration), steps = steps + :j
            WHERE id = CAST(:claimed_id AS uuid) AND (:fenced = 0 OR (lease_token = :tok AND state = 2))
            RETURNING id, project_id, create_time, last_sequence, steps),
     e AS (INSERT INTO orchestrator.run_events (run_id, sequence, event)
           SELECT r.id, r.last_sequence - :n + o, decode(p, 'base64')
             FROM r, unnest(CAST('{"mgGeAgoOT25lIEZpbGUgQmVuY2gSc0kgYnVpbHQgYSBvbmUtZmlsZSBCZW5jaCBQcm9qZWN0IDEgcGFnZS4gSGF2ZSBhIGxvb2sgYXQgdGhlIHByZXZpZXcgYW5kIHRlbGwgbWUgd2hhdCB5b3Ugd291bGQgbGlrZSB0byBjaGFuZ2UgbmV4dC4aM0J1aWx0IGEgb25lLWZpbGUgQmVuY2ggUHJvamVjdCAxIHBhZ2UgKGluZGV4Lmh0bWwpLiI8aHR0cDovL2xvY2FsaG9zdDo1MDcxNS8zMWU1ZGZkYS0xMDk1LTQwMjItYTNmOS1jYmU0YzYxYmIwZWUvKiQ2NTAxZjUwOC03MmUyLTQxM2QtYmRmYy0zNGM2OTAwMzQ0MDU="}' AS text[])) WITH ORDINALITY AS t(p, o)),
     s AS (INSERT INTO orchestrator.run_steps (run_id, step, data)
           SELECT r.id, r.steps - :j + o, CAST(convert_from(decode(d, 'base64'), 'UTF8') AS jsonb)
             FROM r, unnest(CAST('{}' AS text[])) WITH ORDINALITY AS t(d, o))
SELECT r.last_sequence, r.project_id::text, (extract(epoch FROM r.create_time) * 1000000)::bigint,
       CAST(CASE WHEN :n > 0 THEN pg_notify('qai_run_events', concat(CAST(:claimed_id AS text), ':', r.last_sequence)) END AS text)
  FROM r;
UPDATE orchestrator.runs SET state = :st, end_time = now(), error = '',
       result_message_id = CAST(:result_id AS uuid), sandbox_url = :url,
       result_pending = false, lease_owner = '', lease_expire_time = NULL
 WHERE id = CAST(:claimed_id AS uuid);
DELETE FROM orchestrator.run_steps WHERE run_id = CAST(:claimed_id AS uuid);
-- RunStore::Announce: the state change for ProjectService.RecordLatestRun, through the outbox
-- (the run's project and create time came back from the append).
INSERT INTO orchestrator.outbox (id, topic, payload, trace_request_id, ordering_key)
VALUES (gen_random_uuid(), 'projects.RecordLatestRun', decode('CiQ2ZjFjMWMzZS04YTUyLTRkOGUtOWEzNi0yYjFiMmMwZTdkMTESNwokNmYxYzFjM2UtOGE1Mi00ZDhlLTlhMzYtMmIxYjJjMGU3ZDExEg9TVEFURV9TVUNDRUVERUQaBgj1zaTKBiAB', 'base64'),
        'pgbench', concat('latest_run:', CAST(:claimed_project AS text)));
SELECT pg_notify('qai_runs', CAST(:claimed_id AS text));
COMMIT;
\else
COMMIT;
\endif
