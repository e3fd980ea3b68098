-- 008_eval_verifier.sql - what `dsm eval verifier` reports (docs/eval.md): the agreement of a
-- verifier's analyses recorded under a run with the human (or ground-truth) grades of the proofs,
-- for each analysis on its own and for the n-vote of each proof, and on MR-GSM8K whether the first
-- step an analysis blames is the human-labelled first wrong step.
--
-- Binarisation as in 002: a score or label of 1 is "correct", 0 or 0.5 "incorrect", and
-- "incorrect" is the positive class. The n-vote of a proof is the most frequent score among its
-- scored analyses of the run, ties going to the lower score (a reported issue wins a tie); the
-- same rule `dsm prove` uses to judge a proof.

-- Cohen's kappa from a 2x2 table: (po - pe) / (1 - pe); NULL when pe = 1 or the table is empty.
CREATE FUNCTION dsm_kappa(tp float8, fp float8, fn float8, tn float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN tp + fp + fn + tn = 0 THEN NULL ELSE
           ((tp + tn) / (tp + fp + fn + tn)
            - ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / ((tp + fp + fn + tn) ^ 2))
           / nullif(1 - ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / ((tp + fp + fn + tn) ^ 2), 0) END
$$;

-- One row per scored verifier analysis recorded under a run, with the proof's reference label:
-- verifier_judgements (002, 007) with the run and the seed of each analysis.
CREATE VIEW verifier_run_judgements AS
SELECT v.run_id, j.verification_id, v.seed, j.verifier, j.proof_id, j.problem_source, j.generator,
       j.reference, j.reference_label, j.score
FROM verifier_judgements j
JOIN verifications v ON v.id = j.verification_id
WHERE v.run_id IS NOT NULL;

-- One row per (run, verifier, proof, reference): the histogram of its analyses and their vote.
CREATE VIEW verifier_run_votes AS
SELECT run_id, verifier, proof_id, problem_source, generator, reference, reference_label,
       count(*)                                   AS n_scored,
       count(*) FILTER (WHERE score = 0)          AS n_score_0,
       count(*) FILTER (WHERE score = 0.5)        AS n_score_half,
       count(*) FILTER (WHERE score = 1)          AS n_score_1,
       avg(score)::float8                         AS mean_score,
       CASE WHEN count(*) FILTER (WHERE score = 0) >= count(*) FILTER (WHERE score = 0.5)
             AND count(*) FILTER (WHERE score = 0) >= count(*) FILTER (WHERE score = 1) THEN 0
            WHEN count(*) FILTER (WHERE score = 0.5) >= count(*) FILTER (WHERE score = 1) THEN 0.5
            ELSE 1 END::numeric(2, 1)             AS vote_score
FROM verifier_run_judgements
GROUP BY run_id, verifier, proof_id, problem_source, generator, reference, reference_label;

-- Agreement per run and verifier, judged_by 'analysis' (every scored analysis counts once) or
-- 'vote' (every proof once, by its vote); grouped_by 'all', 'source' or 'generator'. n counts
-- what was judged (analyses or proofs); tp/fp/fn/tn with "incorrect" positive; ratios NULL when
-- undefined.
CREATE VIEW verifier_run_agreement AS
WITH j AS (
    SELECT run_id, 'analysis'::text AS judged_by, verifier, problem_source, generator, reference,
           reference_label < 1 AS ref_incorrect, score < 1 AS ver_incorrect
    FROM verifier_run_judgements
    UNION ALL
    SELECT run_id, 'vote', verifier, problem_source, generator, reference,
           reference_label < 1, vote_score < 1
    FROM verifier_run_votes
), c AS (
    SELECT run_id, judged_by, reference, verifier,
           CASE WHEN GROUPING(problem_source) = 0 THEN 'source'
                WHEN GROUPING(generator) = 0 THEN 'generator'
                ELSE 'all' END                                                        AS grouped_by,
           problem_source                                                            AS source,
           generator,
           count(*)::float8                                                          AS n,
           count(*) FILTER (WHERE ver_incorrect AND ref_incorrect)::float8           AS tp,
           count(*) FILTER (WHERE ver_incorrect AND NOT ref_incorrect)::float8       AS fp,
           count(*) FILTER (WHERE NOT ver_incorrect AND ref_incorrect)::float8       AS fn,
           count(*) FILTER (WHERE NOT ver_incorrect AND NOT ref_incorrect)::float8   AS tn
    FROM j
    GROUP BY GROUPING SETS ((run_id, judged_by, reference, verifier, problem_source),
                            (run_id, judged_by, reference, verifier, generator),
                            (run_id, judged_by, reference, verifier))
)
SELECT run_id, judged_by, reference, verifier, grouped_by, source, generator,
       n::bigint AS n, tp::bigint AS tp, fp::bigint AS fp, fn::bigint AS fn, tn::bigint AS tn,
       (tp + tn) / n                                                      AS accuracy,
       (tp / nullif(tp + fn, 0) + tn / nullif(tn + fp, 0)) / 2            AS balanced_accuracy,
       tp / nullif(tp + fp, 0)                                            AS precision_incorrect,
       tp / nullif(tp + fn, 0)                                            AS recall_incorrect,
       dsm_kappa(tp, fp, fn, tn)                                          AS kappa
FROM c;

-- MR-GSM8K: per scored analysis of a run, the human-labelled first wrong step and the first step
-- the analysis names ("Step 3", "step #3", "STEP 3": the first such mention in its text; NULL
-- when it names none). The proofs are the data set's numbered steps ("Step 1: ...").
CREATE VIEW mr_gsm8k_first_issue AS
SELECT v.run_id,
       coalesce(vm.name, '(unknown)')                                  AS verifier,
       v.id                                                            AS verification_id,
       p.id                                                            AS proof_id,
       (l.detail->>'solution_first_error_step')::int                   AS human_step,
       v.score,
       substring(v.analysis FROM '(?i)\mstep\s*#?\s*(\d{1,6})')::int   AS reported_step
FROM verifications v
JOIN proofs p ON p.id = v.proof_id
JOIN problems pr ON pr.id = p.problem_id AND pr.source = 'mr_gsm8k'
JOIN labels l ON l.proof_id = p.id AND l.source = 'human'
             AND (l.detail->>'solution_first_error_step') ~ '^[0-9]{1,6}$'
LEFT JOIN models vm ON vm.id = v.model_id
WHERE v.kind = 'analysis' AND v.score IS NOT NULL AND v.run_id IS NOT NULL;

-- Per run and verifier: analyses, those reporting an error (score < 1), those naming a step, and
-- how many name the human's first wrong step; hit_rate = hits / flagged (NULL when none flagged).
CREATE VIEW mr_gsm8k_first_issue_summary AS
SELECT run_id, verifier,
       count(*)                                                            AS analyses,
       count(*) FILTER (WHERE score < 1)                                   AS flagged,
       count(*) FILTER (WHERE score < 1 AND reported_step IS NOT NULL)     AS flagged_naming_step,
       count(*) FILTER (WHERE score < 1 AND reported_step = human_step)    AS hits,
       (count(*) FILTER (WHERE score < 1 AND reported_step = human_step))::float8
         / nullif(count(*) FILTER (WHERE score < 1), 0)                    AS hit_rate
FROM mr_gsm8k_first_issue
GROUP BY run_id, verifier;
