-- Running totals of gpu_idle_intervals (gpu_idle_user_days, gpu_idle_group_days:
-- db/tables/gpu-waste.ts), kept by statement-level triggers in the same statement as every write,
-- the way 0009_usage_totals keeps the ledger's. Inserts add their rows' sums; an update or delete
-- (never done by the service; an admin's hand edit) takes the old rows' sums away first.
CREATE OR REPLACE FUNCTION gpu_idle_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO gpu_idle_user_days AS t (user_name, day, size_id, sampled_seconds, idle_seconds, micros, rows)
    SELECT user_name, (started_at AT TIME ZONE 'UTC')::date, size_id, -sum(sampled_seconds), -sum(idle_seconds),
      -sum(amount_micros), -count(*)
    FROM old_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (user_name, day, size_id) DO UPDATE SET
      sampled_seconds = t.sampled_seconds + excluded.sampled_seconds, idle_seconds = t.idle_seconds + excluded.idle_seconds,
      micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
    INSERT INTO gpu_idle_group_days AS t (group_name, day, sampled_seconds, idle_seconds, micros, rows)
    SELECT g.name, (r.started_at AT TIME ZONE 'UTC')::date, -sum(r.sampled_seconds), -sum(r.idle_seconds),
      -sum(r.amount_micros), -count(*)
    FROM old_rows r CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(r.groups) x WHERE x IS NOT NULL) g(name)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_name, day) DO UPDATE SET
      sampled_seconds = t.sampled_seconds + excluded.sampled_seconds, idle_seconds = t.idle_seconds + excluded.idle_seconds,
      micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
    DELETE FROM gpu_idle_user_days WHERE rows = 0
      AND (user_name, day) IN (SELECT DISTINCT user_name, (started_at AT TIME ZONE 'UTC')::date FROM old_rows);
    DELETE FROM gpu_idle_group_days WHERE rows = 0
      AND day IN (SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM old_rows);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO gpu_idle_user_days AS t (user_name, day, size_id, sampled_seconds, idle_seconds, micros, rows)
    SELECT user_name, (started_at AT TIME ZONE 'UTC')::date, size_id, sum(sampled_seconds), sum(idle_seconds),
      sum(amount_micros), count(*)
    FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (user_name, day, size_id) DO UPDATE SET
      sampled_seconds = t.sampled_seconds + excluded.sampled_seconds, idle_seconds = t.idle_seconds + excluded.idle_seconds,
      micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
    INSERT INTO gpu_idle_group_days AS t (group_name, day, sampled_seconds, idle_seconds, micros, rows)
    SELECT g.name, (r.started_at AT TIME ZONE 'UTC')::date, sum(r.sampled_seconds), sum(r.idle_seconds),
      sum(r.amount_micros), count(*)
    FROM new_rows r CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(r.groups) x WHERE x IS NOT NULL) g(name)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_name, day) DO UPDATE SET
      sampled_seconds = t.sampled_seconds + excluded.sampled_seconds, idle_seconds = t.idle_seconds + excluded.idle_seconds,
      micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION gpu_idle_totals_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE gpu_idle_user_days, gpu_idle_group_days;
  RETURN NULL;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS gpu_idle_totals_insert ON gpu_idle_intervals;
--> statement-breakpoint
CREATE TRIGGER gpu_idle_totals_insert AFTER INSERT ON gpu_idle_intervals
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gpu_idle_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS gpu_idle_totals_update ON gpu_idle_intervals;
--> statement-breakpoint
CREATE TRIGGER gpu_idle_totals_update AFTER UPDATE ON gpu_idle_intervals
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gpu_idle_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS gpu_idle_totals_delete ON gpu_idle_intervals;
--> statement-breakpoint
CREATE TRIGGER gpu_idle_totals_delete AFTER DELETE ON gpu_idle_intervals
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gpu_idle_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS gpu_idle_totals_truncate ON gpu_idle_intervals;
--> statement-breakpoint
CREATE TRIGGER gpu_idle_totals_truncate AFTER TRUNCATE ON gpu_idle_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION gpu_idle_totals_truncate();
--> statement-breakpoint
-- the meter reads each GPU instance's samples after its newest counted one, by time
CREATE INDEX IF NOT EXISTS "gpu_samples_instance_at" ON "gpu_samples" USING btree ("instance_id", "at");
