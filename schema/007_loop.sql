-- 007_loop.sql - what `dsm loop` needs beyond 001-004 (docs/loop.md).
--
-- * verifications.kind: 'analysis' for a verifier's analysis of a proof (every row so far), 'self'
--   for a generator's self-evaluation stored as an analysis of its own proof, so that the
--   meta-verifier can rate it (the generator's reward needs that rating, SPEC §2). Views that
--   speak of verifier analyses count only kind 'analysis'.
-- * loop_stages: one row per finished stage of a loop round; a resumed loop skips what is there.
-- * indexes for the per-round queries of the loop.

ALTER TABLE verifications ADD COLUMN kind text NOT NULL DEFAULT 'analysis' CHECK (kind IN ('analysis', 'self'));

CREATE TABLE loop_stages (
    run_id      bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    round       integer NOT NULL CHECK (round >= 0),
    stage       text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, round, stage)
);

CREATE INDEX proofs_run_round ON proofs (run_id, round) WHERE run_id IS NOT NULL;
CREATE INDEX verifications_run_round ON verifications (run_id, round) WHERE run_id IS NOT NULL;
CREATE INDEX meta_verifications_run_round ON meta_verifications (run_id, round) WHERE run_id IS NOT NULL;

CREATE OR REPLACE VIEW proof_verification_stats AS
SELECT p.id                                              AS proof_id,
       count(v.id)                                       AS n_verifications,
       count(v.score)                                    AS n_scored,
       count(v.id) - count(v.score)                      AS n_format_failures,
       avg(v.score)::float8                              AS mean_score,
       stddev_pop(v.score)::float8                       AS stddev_score,
       min(v.score)                                      AS min_score,
       count(*) FILTER (WHERE v.score = 0)               AS n_score_0,
       count(*) FILTER (WHERE v.score = 0.5)             AS n_score_half,
       count(*) FILTER (WHERE v.score = 1)               AS n_score_1,
       jsonb_build_object('0',   count(*) FILTER (WHERE v.score = 0),
                          '0.5', count(*) FILTER (WHERE v.score = 0.5),
                          '1',   count(*) FILTER (WHERE v.score = 1)) AS histogram
FROM proofs p
LEFT JOIN verifications v ON v.proof_id = p.id AND v.kind = 'analysis'
GROUP BY p.id;

CREATE OR REPLACE VIEW verifier_judgements AS
SELECT v.id                                  AS verification_id,
       coalesce(vm.name, '(unknown)')        AS verifier,
       p.id                                  AS proof_id,
       pr.source                             AS problem_source,
       coalesce(gm.name, '(unknown)')        AS generator,
       l.source                              AS reference,
       l.origin                              AS reference_origin,
       l.value                               AS reference_label,
       v.score,
       (l.value < 1)                         AS reference_incorrect,
       (v.score < 1)                         AS verifier_incorrect
FROM verifications v
JOIN proofs p ON p.id = v.proof_id
JOIN problems pr ON pr.id = p.problem_id
JOIN labels l ON l.proof_id = p.id AND l.source IN ('human', 'ground_truth') AND l.value IS NOT NULL
LEFT JOIN models vm ON vm.id = v.model_id
LEFT JOIN models gm ON gm.id = p.model_id
WHERE v.score IS NOT NULL AND v.kind = 'analysis';
