-- 001_init.sql - the dsm store: problems, models, proofs, verifications, meta-verifications,
-- labels, submissions, jobs and their results, runs and metrics.
--
-- Applied by `dsm db migrate` in one transaction and recorded in schema_migrations. Never edit
-- this file once committed: add 00N_*.sql instead. docs/store.md explains every table.
--
-- Protocol invariants held here rather than in C:
--   * every score (self-score, verifier score, meta-verifier rating, label) is in {0, 0.5, 1}
--     (domain dsm_score; numeric so that 0.5 is exact);
--   * a job has at most one result (job_results primary key, and job_id UNIQUE on every table a
--     worker writes), so a re-delivered job can never store its result twice;
--   * every row says where it came from: model, sampling settings, seed, run, round, job, or for
--     imported rows origin (the data set) and origin_key (its stable id inside that set).

CREATE DOMAIN dsm_score AS numeric(2, 1) CHECK (VALUE IN (0, 0.5, 1));

CREATE TABLE runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL DEFAULT 'loop',          -- loop | eval | import | bench | ...
    config      jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'aborted')),
    round       integer NOT NULL DEFAULT 0 CHECK (round >= 0),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE metrics (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    round      integer NOT NULL DEFAULT 0,
    step       bigint NOT NULL DEFAULT 0,
    name       text NOT NULL,
    value      double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX metrics_run_name_step ON metrics (run_id, name, step);

CREATE TABLE problems (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source             text NOT NULL,      -- data set: gsm8k, math, math500, aime24, opc, proofbench, ...
    source_key         text NOT NULL,      -- stable id inside the source (unique_id, problem_idx, ...)
    statement          text NOT NULL,
    reference_solution text,
    gold_answer        text,               -- NULL for proof-only problems
    answer_type        text,               -- e.g. Numerical, Expression (OlympiadBench)
    subject            text,
    level              text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_key)
);

CREATE TABLE models (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    kind          text NOT NULL CHECK (kind IN ('checkpoint', 'remote', 'external')),
                  -- checkpoint: a directory we can load; remote: an OpenAI-compatible endpoint;
                  -- external: a model we only know by name (imported proofs)
    role          text NOT NULL DEFAULT 'any'
                  CHECK (role IN ('any', 'generator', 'verifier', 'metaverifier')),
    path          text,
    endpoint      text,
    base_model_id bigint REFERENCES models (id),
    run_id        bigint REFERENCES runs (id),
    round         integer,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'checkpoint' OR path IS NOT NULL),
    CHECK (kind <> 'remote' OR endpoint IS NOT NULL)
);

-- The queue. state: queued (claimable once run_after has passed) -> running (under a lease) ->
-- done | back to queued (failure with attempts left, or an expired lease) | dead (attempts used up).
CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL,                  -- generate | verify | metaverify | submission | ...
    payload      jsonb NOT NULL DEFAULT '{}',
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'dead')),
    priority     integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    run_after    timestamptz NOT NULL DEFAULT now(),
    lease_token  uuid,
    lease_owner  text,
    lease_until  timestamptz,
    last_error   text,
    dedup_key    text UNIQUE,                   -- optional: makes enqueue idempotent
    run_id       bigint REFERENCES runs (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK ((state = 'running') = (lease_token IS NOT NULL AND lease_until IS NOT NULL))
);
-- claim: the oldest highest-priority claimable job of some kinds
CREATE INDEX jobs_claim ON jobs (kind, priority DESC, id) WHERE state = 'queued';
-- reclaim: expired leases
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_run ON jobs (run_id) WHERE run_id IS NOT NULL;

-- One result per job, written in the transaction that marks the job done.
CREATE TABLE job_results (
    job_id     bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    result     jsonb NOT NULL DEFAULT '{}',
    worker     text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Wake idle workers: one notification per inserting statement, payload empty (the channel is the
-- message; workers then claim). Requeued jobs wake workers too.
CREATE FUNCTION dsm_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dsm_jobs', '');
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION dsm_jobs_notify();

CREATE TABLE proofs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    problem_id      bigint NOT NULL REFERENCES problems (id),
    model_id        bigint REFERENCES models (id),
    proof           text NOT NULL,             -- the "## Solution" part (or the whole proof)
    self_evaluation text,                      -- the "## Self Evaluation" part
    self_score      dsm_score,
    raw_output      text,                      -- the full generation, before parsing
    finish_reason   text CHECK (finish_reason IN ('stop', 'length')),
    sampling        jsonb NOT NULL DEFAULT '{}', -- temperature, top_p, top_k, max_new_tokens, ...
    seed            bigint,
    round           integer,
    run_id          bigint REFERENCES runs (id),
    job_id          bigint UNIQUE REFERENCES jobs (id),
    origin          text,                      -- imported: data set file (e.g. opc/test.jsonl)
    origin_key      text,                      -- imported: stable record id inside it
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (origin, origin_key)
);
CREATE INDEX proofs_problem ON proofs (problem_id);
CREATE INDEX proofs_model ON proofs (model_id);

-- Refinement: a proof written from earlier proofs (and their analyses).
CREATE TABLE proof_parents (
    proof_id  bigint NOT NULL REFERENCES proofs (id) ON DELETE CASCADE,
    parent_id bigint NOT NULL REFERENCES proofs (id),
    PRIMARY KEY (proof_id, parent_id),
    CHECK (proof_id <> parent_id)
);

CREATE TABLE verifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proof_id      bigint NOT NULL REFERENCES proofs (id) ON DELETE CASCADE,
    model_id      bigint REFERENCES models (id),
    analysis      text,
    score         dsm_score,                   -- NULL: format failure or cut off (never scored)
    format_ok     boolean NOT NULL DEFAULT true,
    raw_output    text,
    finish_reason text CHECK (finish_reason IN ('stop', 'length')),
    sampling      jsonb NOT NULL DEFAULT '{}',
    seed          bigint,
    round         integer,
    run_id        bigint REFERENCES runs (id),
    job_id        bigint UNIQUE REFERENCES jobs (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (score IS NULL OR format_ok)
);
CREATE INDEX verifications_proof ON verifications (proof_id);
CREATE INDEX verifications_model ON verifications (model_id);

CREATE TABLE meta_verifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verification_id bigint NOT NULL REFERENCES verifications (id) ON DELETE CASCADE,
    model_id        bigint REFERENCES models (id),
    analysis        text,
    score           dsm_score,
    format_ok       boolean NOT NULL DEFAULT true,
    raw_output      text,
    finish_reason   text CHECK (finish_reason IN ('stop', 'length')),
    sampling        jsonb NOT NULL DEFAULT '{}',
    seed            bigint,
    round           integer,
    run_id          bigint REFERENCES runs (id),
    job_id          bigint UNIQUE REFERENCES jobs (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (score IS NULL OR format_ok)
);
CREATE INDEX meta_verifications_verification ON meta_verifications (verification_id);

-- A label of a proof. value NULL = "uncertain" (the vote could not decide; left for a human).
-- Human grades on a points scale keep the raw points and the maximum beside the normalised value
-- (full marks -> 1, zero -> 0, anything between -> 0.5).
CREATE TABLE labels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    proof_id   bigint NOT NULL REFERENCES proofs (id) ON DELETE CASCADE,
    value      dsm_score,
    source     text NOT NULL CHECK (source IN ('auto', 'human', 'ground_truth')),
    rule       text,                 -- e.g. 'v2-vote', 'opc-verdict', 'points-scale'
    n          integer CHECK (n > 0),
    m          integer CHECK (m > 0),
    k          integer CHECK (k > 0),
    vote       jsonb,                -- the full vote (analyses, scores, validity) for auto labels
    points     numeric,              -- human points grade, when the source had one
    max_points numeric,
    detail     jsonb NOT NULL DEFAULT '{}',
    origin     text NOT NULL DEFAULT '',  -- imported data set, or labeler run/round
    run_id     bigint REFERENCES runs (id),
    round      integer,
    job_id     bigint UNIQUE REFERENCES jobs (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (proof_id, source, origin),
    CHECK (source <> 'auto' OR (n IS NOT NULL AND m IS NOT NULL AND k IS NOT NULL)),
    CHECK ((points IS NULL) = (max_points IS NULL)),
    CHECK (points IS NULL OR (max_points > 0 AND points >= 0 AND points <= max_points))
);
CREATE INDEX labels_proof ON labels (proof_id);
CREATE INDEX labels_source ON labels (source);

-- Proofs handed in by integrators (CLI, SQL INSERT, HTTP) for verification scoring.
CREATE TABLE submissions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submitter   text NOT NULL DEFAULT current_user,
    problem     text NOT NULL CHECK (length(problem) > 0),
    proof       text NOT NULL CHECK (length(proof) > 0),
    n           integer NOT NULL DEFAULT 64 CHECK (n BETWEEN 1 AND 1024),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed')),
    proof_id    bigint REFERENCES proofs (id),
    result      jsonb,               -- mean score, histogram, analyses (written by workers)
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX submissions_submitter ON submissions (submitter);
