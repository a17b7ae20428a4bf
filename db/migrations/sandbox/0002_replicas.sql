-- The sandbox tier's replicas and which one serves each project.
--
-- A replica registers a row each time it starts (an incarnation) and holds, while it lives, the
-- session advisory lock (1363233107, id) on a database connection of its own: when the process
-- dies its session ends and the lock goes with it, so the others see it gone at once (a host
-- that vanishes is seen when the session's TCP keepalives give up). `name` ranks the replicas
-- for a project (rendezvous hashing), so a restarted replica gets its projects back.
CREATE TABLE sandbox.replicas (
  id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL,
  -- host:port the orchestrators call it at; empty: the tier's own address (one replica).
  address    text NOT NULL,
  start_time timestamptz NOT NULL DEFAULT now()
);

-- The replica a project's workspace lives on. It stays there while that replica lives; a
-- project whose replica is gone goes to the best-ranked live one, where its workspace is
-- rebuilt from the last snapshot plus the run's journal.
CREATE TABLE sandbox.assignments (
  project_id  uuid PRIMARY KEY,
  replica_id  integer NOT NULL REFERENCES sandbox.replicas (id) ON DELETE CASCADE,
  assign_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_replica ON sandbox.assignments (replica_id);
