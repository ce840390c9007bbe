-- The read cache (hub-service src/routes/read-cache.ts) keeps each user's settled figures (ledger
-- sums, instance rows, limits) in memory until something they are read from changes. Every such
-- change is announced here, by the database itself, on the channel 'ngsci_reads', whoever writes
-- it (the meter leader, another replica, an admin's SQL): the payload is a JSON array of the users
-- whose reads changed, or '*' for all (a large statement, or a table that is not per user).
-- Statement-level triggers: one notification per statement, delivered when the transaction
-- commits and never for one that rolls back; identical ones in a transaction are sent once.
CREATE OR REPLACE FUNCTION ngsci_reads_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  users text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    SELECT count(*) INTO n FROM old_rows;
    IF n > 0 AND n <= 100 THEN
      SELECT json_agg(DISTINCT user_name)::text INTO users FROM old_rows;
    END IF;
  ELSE
    SELECT count(*) INTO n FROM new_rows;
    IF n > 0 AND n <= 100 THEN
      SELECT json_agg(DISTINCT user_name)::text INTO users FROM new_rows;
    END IF;
  END IF;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  -- a notification's payload must stay under 8000 bytes
  IF n > 100 OR users IS NULL OR length(users) > 7000 THEN
    users := '*';
  END IF;
  PERFORM pg_notify('ngsci_reads', users);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION ngsci_reads_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ngsci_reads', '*');
  RETURN NULL;
END $$;
--> statement-breakpoint
-- the ledger: rows are appended by the meter; anything else (a repair, a test's cleanup) drops all
CREATE TRIGGER ngsci_reads_insert AFTER INSERT ON usage_intervals
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_rows();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_change AFTER UPDATE OR DELETE ON usage_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_truncate AFTER TRUNCATE ON usage_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_change AFTER DELETE OR TRUNCATE ON usage_user_days
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
-- idle GPU time (the usage chart's gpuIdle)
CREATE TRIGGER ngsci_reads_insert AFTER INSERT ON gpu_idle_intervals
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_rows();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_change AFTER UPDATE OR DELETE ON gpu_idle_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_truncate AFTER TRUNCATE ON gpu_idle_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_change AFTER DELETE OR TRUNCATE ON gpu_idle_user_days
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
-- instances: launches, every state change, anything written on a row
CREATE TRIGGER ngsci_reads_insert AFTER INSERT ON instances
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_rows();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_update AFTER UPDATE ON instances
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_rows();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_delete AFTER DELETE ON instances
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_rows();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_truncate AFTER TRUNCATE ON instances
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
-- limits: quota and budget rows (any subject) and researchers' own idle timeouts
CREATE TRIGGER ngsci_reads_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON quotas
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
--> statement-breakpoint
CREATE TRIGGER ngsci_reads_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON idle_choices
  FOR EACH STATEMENT EXECUTE FUNCTION ngsci_reads_all();
