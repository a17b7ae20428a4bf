-- Operator controls: each run's own model and timeout (within the configured bounds, checked
-- by StartRun), and how many journal steps it has recorded over all its attempts (the journal
-- itself goes when the run ends; the count stays).
ALTER TABLE orchestrator.runs
  -- '' for runs queued before this column: they use the configured default model.
  ADD COLUMN model      text NOT NULL DEFAULT '',
  -- The longest the run may take from its first start, in µs; 0 (runs queued before this
  -- column) is no limit.
  ADD COLUMN timeout_us bigint NOT NULL DEFAULT 0,
  ADD COLUMN steps      integer NOT NULL DEFAULT 0;

-- Runs under way keep numbering their journal after the steps they have.
UPDATE orchestrator.runs r SET steps = s.n
  FROM (SELECT run_id, max(step) AS n FROM orchestrator.run_steps GROUP BY run_id) s
  WHERE r.id = s.run_id;
