-- A run's result reaches MessageService through the outbox like every other effect: the worker
-- posts it (the run stays RUNNING, its lease given up) and the run ends SUCCEEDED only once the
-- message is stored. result_pending marks a run in between: no worker holds it, the rescuer
-- leaves it alone, and the delivery of its result (or the refusal of it) ends it.
ALTER TABLE orchestrator.runs ADD COLUMN result_pending boolean NOT NULL DEFAULT false;
