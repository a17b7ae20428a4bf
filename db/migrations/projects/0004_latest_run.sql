-- Project.latest_run, kept by ProjectService.RecordLatestRun: which news of which run is the
-- newest (a later run's, or the same run's with a higher event sequence).
ALTER TABLE projects.projects
  ADD COLUMN latest_run_create_time timestamptz,
  ADD COLUMN latest_run_sequence    bigint NOT NULL DEFAULT 0;
