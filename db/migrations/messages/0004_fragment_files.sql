-- A fragment's files, each content stored once per project (by its SHA-256): a follow-up that
-- leaves a 3 MiB file as it was adds a row naming that file's hash, not another copy of it.
-- Contents belong to a project, so purging the project removes them with its messages.
CREATE TABLE messages.file_contents (
  project_id uuid NOT NULL,
  sha256     bytea NOT NULL,
  content    text NOT NULL,
  PRIMARY KEY (project_id, sha256)
);

CREATE TABLE messages.fragment_files (
  fragment_id uuid NOT NULL REFERENCES messages.fragments (id) ON DELETE CASCADE,
  path        text NOT NULL,
  sha256      bytea NOT NULL,
  PRIMARY KEY (fragment_id, path)
);

-- What a listing needs to know before it loads any file: the bytes of the fragment's paths and
-- contents, and how many files it has.
ALTER TABLE messages.fragments
  ADD COLUMN files_bytes bigint NOT NULL DEFAULT 0,
  ADD COLUMN files_count integer NOT NULL DEFAULT 0;

-- The fragments written before: their files move over. Their `files` column stays as it was
-- for the previous release's replicas during the rollout (this release writes '{}' there and
-- reads only the tables above); a later migration drops it.
INSERT INTO messages.file_contents (project_id, sha256, content)
SELECT m.project_id, sha256(convert_to(e.value, 'UTF8')), e.value
  FROM messages.fragments f
  JOIN messages.messages m ON m.id = f.message_id
  CROSS JOIN LATERAL jsonb_each_text(f.files) e
ON CONFLICT DO NOTHING;

INSERT INTO messages.fragment_files (fragment_id, path, sha256)
SELECT f.id, e.key, sha256(convert_to(e.value, 'UTF8'))
  FROM messages.fragments f
  CROSS JOIN LATERAL jsonb_each_text(f.files) e;

UPDATE messages.fragments f
   SET files_bytes = s.bytes, files_count = s.n
  FROM (SELECT f2.id, sum(octet_length(e.key) + octet_length(e.value)) AS bytes, count(*) AS n
          FROM messages.fragments f2
          CROSS JOIN LATERAL jsonb_each_text(f2.files) e
         GROUP BY f2.id) s
 WHERE s.id = f.id;
