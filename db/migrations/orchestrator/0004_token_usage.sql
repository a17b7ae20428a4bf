-- Token usage per run: the sums of what the model provider reported for the run's calls (the
-- agent's turns, the title and the response), over all its attempts. 0 when the provider does
-- not report usage (the builtin one).
ALTER TABLE orchestrator.runs
  ADD COLUMN prompt_tokens     bigint NOT NULL DEFAULT 0,
  ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0;
