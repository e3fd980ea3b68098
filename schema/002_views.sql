-- 002_views.sql - stable views for the questions analysts ask (docs/store.md shows each with an
-- example query and its output).
--
-- Binarisation used by the agreement views: a score or label of 1 means "correct"; anything below
-- 1 (0 or 0.5) means "incorrect". "incorrect" is the positive class of precision and recall,
-- because finding wrong proofs is the verifier's job.

-- Per proof: how many verifier analyses, how many produced a score, the mean score and the
-- histogram over {0, 0.5, 1}. Proofs with no verification appear with n_verifications = 0.
CREATE VIEW proof_verification_stats AS
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
LEFT JOIN verifications v ON v.proof_id = p.id
GROUP BY p.id;

-- One row per label, with the proof's provenance (problem, generating model, sampling, seed,
-- round, import origin), the label's decision (rule, n/m/k, full vote, human points) and the
-- verification statistics of the proof.
CREATE VIEW labeled_proofs AS
SELECT l.id                 AS label_id,
       p.id                 AS proof_id,
       pr.id                AS problem_id,
       pr.source            AS problem_source,
       pr.source_key        AS problem_key,
       gm.name              AS generator,
       p.origin             AS proof_origin,
       p.origin_key         AS proof_origin_key,
       p.round              AS proof_round,
       p.run_id             AS proof_run_id,
       p.seed,
       p.sampling,
       p.self_score,
       l.value              AS label,
       l.source             AS label_source,
       l.rule,
       l.n, l.m, l.k,
       l.vote,
       l.points,
       l.max_points,
       l.origin             AS label_origin,
       l.detail             AS label_detail,
       s.n_verifications,
       s.n_scored,
       s.mean_score,
       s.histogram,
       l.created_at         AS labeled_at
FROM labels l
JOIN proofs p ON p.id = l.proof_id
JOIN problems pr ON pr.id = p.problem_id
LEFT JOIN models gm ON gm.id = p.model_id
JOIN proof_verification_stats s ON s.proof_id = p.id;

-- One row per (scored verifier analysis, reference label) where the reference is a human or a
-- ground-truth label with a value: the raw material of the agreement statistics.
CREATE VIEW verifier_judgements AS
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
WHERE v.score IS NOT NULL;

-- Agreement of each verifier with the reference labels, each analysis judged on its own.
-- grouped_by = 'source' (one row per problem source), 'generator' (per generating model) or
-- 'all'. tp/fp/fn/tn count "incorrect" as positive. Ratios are NULL when undefined (0/0).
-- kappa = (po - pe) / (1 - pe), po the observed agreement, pe the agreement expected by chance
-- from the two marginals.
CREATE VIEW verifier_agreement AS
WITH c AS (
    SELECT j.reference,
           j.verifier,
           CASE WHEN GROUPING(j.problem_source) = 0 THEN 'source'
                WHEN GROUPING(j.generator) = 0 THEN 'generator'
                ELSE 'all' END                                                          AS grouped_by,
           j.problem_source                                                            AS source,
           j.generator,
           count(*)::float8                                                            AS n,
           count(*) FILTER (WHERE j.verifier_incorrect AND j.reference_incorrect)::float8         AS tp,
           count(*) FILTER (WHERE j.verifier_incorrect AND NOT j.reference_incorrect)::float8     AS fp,
           count(*) FILTER (WHERE NOT j.verifier_incorrect AND j.reference_incorrect)::float8     AS fn,
           count(*) FILTER (WHERE NOT j.verifier_incorrect AND NOT j.reference_incorrect)::float8 AS tn
    FROM verifier_judgements j
    GROUP BY GROUPING SETS ((j.reference, j.verifier, j.problem_source),
                            (j.reference, j.verifier, j.generator),
                            (j.reference, j.verifier))
)
SELECT reference, verifier, grouped_by, source, generator,
       n::bigint AS n, tp::bigint AS tp, fp::bigint AS fp, fn::bigint AS fn, tn::bigint AS tn,
       (tp + tn) / n                                                      AS accuracy,
       (tp / nullif(tp + fn, 0) + tn / nullif(tn + fp, 0)) / 2            AS balanced_accuracy,
       tp / nullif(tp + fp, 0)                                            AS precision_incorrect,
       tp / nullif(tp + fn, 0)                                            AS recall_incorrect,
       ((tp + tn) / n - ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n))
         / nullif(1 - ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n), 0) AS kappa
FROM c;

-- The queue at a glance.
CREATE VIEW job_queue_summary AS
SELECT kind, state, count(*) AS n, min(created_at) AS oldest, max(attempts) AS max_attempts_used
FROM jobs GROUP BY kind, state;
