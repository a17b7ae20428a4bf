-- Snapshots' files stored by content: each distinct content once (sandbox.blobs, keyed by its
-- SHA-256), whatever the snapshots, versions and projects that hold it. A snapshot keeps only
-- its manifest, each path with its content's hash, so a version that changes one file of a
-- project adds that file and a list of paths, not a copy of the project.
--
-- sandbox.project_blobs says which blobs each project's snapshots use (one row per project and
-- blob, however many snapshots): a purge removes its project's rows and then the blobs no
-- project uses any more, under an exclusive advisory lock that every snapshot save takes
-- shared (SandboxStore), so a save never refers to a blob a purge is removing.
CREATE TABLE sandbox.blobs (
  hash    bytea PRIMARY KEY,  -- SHA-256 of content
  size    bigint NOT NULL,
  content bytea NOT NULL
);

CREATE TABLE sandbox.project_blobs (
  project_id uuid NOT NULL,
  hash       bytea NOT NULL REFERENCES sandbox.blobs (hash),
  PRIMARY KEY (project_id, hash)
);
CREATE INDEX project_blobs_hash ON sandbox.project_blobs (hash);

-- The manifest (services/sandbox/manifest.h): for each file, its path, a NUL, and the 32 bytes
-- of its content's SHA-256.
ALTER TABLE sandbox.snapshots ADD COLUMN manifest bytea;

-- The snapshots so far move over, byte for byte.
INSERT INTO sandbox.blobs (hash, size, content)
  SELECT sha256(c), octet_length(c), c
  FROM (SELECT convert_to(f.value, 'UTF8') AS c
        FROM sandbox.snapshots s, jsonb_each_text(s.files) f) contents
  ON CONFLICT (hash) DO NOTHING;
INSERT INTO sandbox.project_blobs (project_id, hash)
  SELECT DISTINCT s.project_id, sha256(convert_to(f.value, 'UTF8'))
  FROM sandbox.snapshots s, jsonb_each_text(s.files) f;
UPDATE sandbox.snapshots s SET manifest = COALESCE(
  (SELECT string_agg(convert_to(f.key, 'UTF8') || '\x00'::bytea || sha256(convert_to(f.value, 'UTF8')),
                     ''::bytea ORDER BY convert_to(f.key, 'UTF8'))
   FROM jsonb_each_text(s.files) f), ''::bytea);
ALTER TABLE sandbox.snapshots ALTER COLUMN manifest SET NOT NULL;
-- The previous release's replicas still read `files` while a rollout goes on: they keep the
-- snapshots they knew, and a snapshot written by this release (files NULL) is an error to
-- them, never an empty site. A later migration drops the column.
ALTER TABLE sandbox.snapshots ALTER COLUMN files DROP NOT NULL;
