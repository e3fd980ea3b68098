-- 005_eval.sql - `dsm eval --run NAME`: every sample of an answer-set evaluation, so that a run is
-- resumable and its metrics can be recomputed in SQL. The run is a runs row of kind 'eval' (its
-- settings in config); its metrics (greedy accuracy, maj@k, pass@1, pass@k, per group) are rows
-- of metrics named '<group>/<metric>', group 'all', 'subject=<s>' or 'level=<n>'.

CREATE TABLE eval_samples (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    problem_id    bigint NOT NULL REFERENCES problems (id),
    sample        integer NOT NULL CHECK (sample >= -1),  -- -1: the greedy output; 0..k-1: sampled
    text          text NOT NULL,
    finish_reason text,                                   -- stop | length | the backend's word
    answer        text,                                   -- the extracted final answer (NULL: none)
    correct       boolean NOT NULL,                       -- equal to the gold answer (answer checker)
    seed          bigint,
    model_id      bigint REFERENCES models (id),
    sampling      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, problem_id, sample)
);
CREATE INDEX eval_samples_problem ON eval_samples (problem_id);

-- Per run and problem: the greedy verdict and how many samples were right.
CREATE VIEW eval_problem_results AS
SELECT s.run_id, r.name AS run, s.problem_id, p.source, p.subject, p.level,
       bool_or(s.correct) FILTER (WHERE s.sample = -1) AS greedy_correct,
       count(*) FILTER (WHERE s.sample >= 0) AS samples,
       count(*) FILTER (WHERE s.sample >= 0 AND s.correct) AS samples_correct
FROM eval_samples s JOIN runs r ON r.id = s.run_id JOIN problems p ON p.id = s.problem_id
GROUP BY s.run_id, r.name, s.problem_id, p.source, p.subject, p.level;

GRANT SELECT, INSERT, UPDATE ON eval_samples TO dsm_worker;
GRANT SELECT ON eval_problem_results TO dsm_worker;
