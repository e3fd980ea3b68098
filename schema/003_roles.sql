-- 003_roles.sql - roles and the submission path.
--
-- dsm_worker: the model services and the labeler (read everything, insert and update pipeline
-- rows, never delete). dsm_submitter: integrators; may INSERT a submission (problem, proof, n)
-- and SELECT their own submissions (row-level security on submitter = current_user), nothing
-- else. Both are NOLOGIN group roles: grant them to login roles, e.g.
--   CREATE ROLE alice LOGIN IN ROLE dsm_submitter;
-- Roles are cluster-wide, so they are created only when missing (several databases may share
-- one server).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dsm_worker') THEN
        CREATE ROLE dsm_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dsm_submitter') THEN
        CREATE ROLE dsm_submitter NOLOGIN;
    END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dsm_worker, dsm_submitter;

GRANT SELECT, INSERT, UPDATE ON problems, models, proofs, proof_parents, verifications,
    meta_verifications, labels, jobs, job_results, runs, metrics, submissions TO dsm_worker;
GRANT SELECT ON proof_verification_stats, labeled_proofs, verifier_judgements,
    verifier_agreement, job_queue_summary TO dsm_worker;

GRANT SELECT ON submissions TO dsm_submitter;
GRANT INSERT (problem, proof, n) ON submissions TO dsm_submitter;

ALTER TABLE submissions ENABLE ROW LEVEL SECURITY;
CREATE POLICY submissions_submitter_read ON submissions FOR SELECT TO dsm_submitter
    USING (submitter = current_user);
CREATE POLICY submissions_submitter_insert ON submissions FOR INSERT TO dsm_submitter
    WITH CHECK (submitter = current_user);
CREATE POLICY submissions_worker_all ON submissions TO dsm_worker
    USING (true) WITH CHECK (true);

-- A submission becomes a job of kind 'submission' (payload {"submission_id": id}) in the same
-- transaction; the jobs trigger then wakes the workers. SECURITY DEFINER because submitters may
-- not touch jobs themselves; search_path pinned so the definer's rights cannot be hijacked.
CREATE FUNCTION dsm_submission_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO jobs (kind, payload, dedup_key)
    VALUES ('submission', jsonb_build_object('submission_id', NEW.id), 'submission:' || NEW.id);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION dsm_submission_enqueue() FROM PUBLIC;
CREATE TRIGGER submissions_enqueue AFTER INSERT ON submissions
    FOR EACH ROW EXECUTE FUNCTION dsm_submission_enqueue();
