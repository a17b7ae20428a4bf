-- Delivered outbox rows are deleted some time after delivery (OutboxRelay::PruneOnce): this
-- index finds the old ones without reading the whole table. Migrations run in one transaction,
-- so it is built without CONCURRENTLY: writes to the outbox (CreateProject) wait while it is
-- built, which is brief unless delivered rows have piled up for a long time.
CREATE INDEX outbox_delivered ON projects.outbox (deliver_time) WHERE deliver_time IS NOT NULL;
