-- 006_submissions.sql - what a submission's vote needs beside n: m meta-verifications per
-- reported issue and k agreeing analyses (SPEC §2 defaults 3 and 2). A submitter may set them.
-- The submission's own problem and proof rows are written by the worker that advances it
-- (problems.source 'submission', proofs.origin 'submission' with origin_key = the submission id).

ALTER TABLE submissions
    ADD COLUMN m integer NOT NULL DEFAULT 3 CHECK (m BETWEEN 1 AND 64),
    ADD COLUMN k integer NOT NULL DEFAULT 2 CHECK (k BETWEEN 1 AND 1024);
GRANT INSERT (m, k) ON submissions TO dsm_submitter;

-- The jobs of one submission are found by their dedup keys ('verify:sub:<id>:<i>',
-- 'metaverify:sub:<id>:<verification>:<j>'): a prefix search needs the C collation's ordering.
CREATE INDEX jobs_dedup_prefix ON jobs (dedup_key text_pattern_ops) WHERE dedup_key IS NOT NULL;
