-- Caps on runs queued or running at once (QAI_RUN_MAX_ACTIVE_PER_PROJECT and
-- QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL): CreateMessage counts the StartRun requests still in the
-- outbox of the project (by ordering_key, through outbox_order) and of the author.
ALTER TABLE messages.outbox
  -- The principal an outbox row acts for (a StartRun's: the prompt's author); '' for rows
  -- written before this column and for rows that act for nobody in particular.
  ADD COLUMN author text NOT NULL DEFAULT '';

-- An author's undelivered rows; the index holds undelivered rows only, so delivered ones
-- (kept until pruned) cost the count nothing.
CREATE INDEX outbox_pending_author ON messages.outbox (author) WHERE deliver_time IS NULL;
