-- Fair claims across authors: a claim asks, for each queued run it looks at, whether the run's
-- author has a RUNNING run (and how many). This index holds RUNNING runs only (at most the
-- fleet's workers), so that probe reads exactly the author's running runs and not their queue.
CREATE INDEX runs_author_running ON orchestrator.runs (author) WHERE state = 2;
