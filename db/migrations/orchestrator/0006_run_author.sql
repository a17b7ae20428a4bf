-- Caps on runs queued or running at once (QAI_RUN_MAX_ACTIVE_PER_PROJECT and
-- QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL): StartRun counts a project's active runs and its author's.
ALTER TABLE orchestrator.runs
  -- The principal the run counts against: the author of the prompt that started it ('' for
  -- runs started before this column, which count against their project only).
  ADD COLUMN author text NOT NULL DEFAULT '';

-- An author's active runs, over every project, counted from this index alone: it holds only
-- QUEUED and RUNNING runs, so finished ones cost the count nothing. (A project's active runs
-- are counted the same way through runs_project_active, of 0001.)
CREATE INDEX runs_author_active ON orchestrator.runs (author) WHERE state IN (1, 2);
