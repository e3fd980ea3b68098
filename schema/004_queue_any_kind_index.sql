-- 004_queue_any_kind_index.sql - claiming jobs of any kind (db_job_claim with no kinds) in
-- priority order without sorting the whole queue: 001's jobs_claim index leads with kind and
-- cannot serve ORDER BY priority DESC, id alone.
CREATE INDEX jobs_claim_any ON jobs (priority DESC, id) WHERE state = 'queued';
