-- The relay reads due rows in write order (seq); this keeps that read small however many rows
-- were ever delivered.
CREATE INDEX outbox_undelivered_seq ON messages.outbox (seq) WHERE deliver_time IS NULL;
