-- Running totals of the ledger (usage_user_days, usage_group_days: db/tables/metering.ts), kept by
-- statement-level triggers on usage_intervals in the same statement as every write, and filled
-- here from the rows that exist. The tables may exist already (a migration generated alongside
-- this one created them); they are emptied and refilled under a lock, so this is exact either way.
CREATE TABLE IF NOT EXISTS "usage_group_days" (
	"group_name" text NOT NULL,
	"day" date NOT NULL,
	"micros" bigint NOT NULL,
	"rows" integer NOT NULL,
	CONSTRAINT "usage_group_days_group_name_day_pk" PRIMARY KEY("group_name","day")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "usage_user_days" (
	"user_name" text NOT NULL,
	"day" date NOT NULL,
	"kind" text NOT NULL,
	"size_id" text NOT NULL,
	"micros" bigint NOT NULL,
	"billed_seconds" bigint NOT NULL,
	"gpu_seconds" bigint NOT NULL,
	"active_seconds" bigint NOT NULL,
	"idle_seconds" bigint NOT NULL,
	"rows" integer NOT NULL,
	CONSTRAINT "usage_user_days_user_name_day_kind_size_id_pk" PRIMARY KEY("user_name","day","kind","size_id")
);
--> statement-breakpoint
-- every insert adds its rows' sums; an update or delete (never done by the service; an admin's
-- hand edit) takes the old rows' sums away first; a day left with no row is removed
CREATE OR REPLACE FUNCTION usage_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO usage_user_days AS t
      (user_name, day, kind, size_id, micros, billed_seconds, gpu_seconds, active_seconds, idle_seconds, rows)
    SELECT user_name, (started_at AT TIME ZONE 'UTC')::date, kind, size_id, -sum(amount_micros), -sum(billed_to - billed_from),
      -sum(CASE WHEN size_class = 'gpu' THEN billed_to - billed_from ELSE 0 END),
      -sum(active_seconds), -sum(idle_seconds), -count(*)
    FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_name, day, kind, size_id) DO UPDATE SET
      micros = t.micros + excluded.micros, billed_seconds = t.billed_seconds + excluded.billed_seconds,
      gpu_seconds = t.gpu_seconds + excluded.gpu_seconds, active_seconds = t.active_seconds + excluded.active_seconds,
      idle_seconds = t.idle_seconds + excluded.idle_seconds, rows = t.rows + excluded.rows;
    INSERT INTO usage_group_days AS t (group_name, day, micros, rows)
    SELECT g.name, (r.started_at AT TIME ZONE 'UTC')::date, -sum(r.amount_micros), -count(*)
    FROM old_rows r CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(r.groups) x WHERE x IS NOT NULL) g(name)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_name, day) DO UPDATE SET micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
    DELETE FROM usage_user_days WHERE rows = 0
      AND (user_name, day) IN (SELECT DISTINCT user_name, (started_at AT TIME ZONE 'UTC')::date FROM old_rows);
    DELETE FROM usage_group_days WHERE rows = 0
      AND day IN (SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM old_rows);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO usage_user_days AS t
      (user_name, day, kind, size_id, micros, billed_seconds, gpu_seconds, active_seconds, idle_seconds, rows)
    SELECT user_name, (started_at AT TIME ZONE 'UTC')::date, kind, size_id, sum(amount_micros), sum(billed_to - billed_from),
      sum(CASE WHEN size_class = 'gpu' THEN billed_to - billed_from ELSE 0 END),
      sum(active_seconds), sum(idle_seconds), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_name, day, kind, size_id) DO UPDATE SET
      micros = t.micros + excluded.micros, billed_seconds = t.billed_seconds + excluded.billed_seconds,
      gpu_seconds = t.gpu_seconds + excluded.gpu_seconds, active_seconds = t.active_seconds + excluded.active_seconds,
      idle_seconds = t.idle_seconds + excluded.idle_seconds, rows = t.rows + excluded.rows;
    INSERT INTO usage_group_days AS t (group_name, day, micros, rows)
    SELECT g.name, (r.started_at AT TIME ZONE 'UTC')::date, sum(r.amount_micros), count(*)
    FROM new_rows r CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(r.groups) x WHERE x IS NOT NULL) g(name)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_name, day) DO UPDATE SET micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION usage_totals_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE usage_user_days, usage_group_days;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- no write may land between the triggers' creation and the fill below (a replica still running
-- the previous version): the lock holds them until this migration commits, then they fire the triggers
LOCK TABLE usage_intervals IN SHARE ROW EXCLUSIVE MODE;
--> statement-breakpoint
DROP TRIGGER IF EXISTS usage_totals_insert ON usage_intervals;
--> statement-breakpoint
CREATE TRIGGER usage_totals_insert AFTER INSERT ON usage_intervals
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS usage_totals_update ON usage_intervals;
--> statement-breakpoint
CREATE TRIGGER usage_totals_update AFTER UPDATE ON usage_intervals
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS usage_totals_delete ON usage_intervals;
--> statement-breakpoint
CREATE TRIGGER usage_totals_delete AFTER DELETE ON usage_intervals
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_apply();
--> statement-breakpoint
DROP TRIGGER IF EXISTS usage_totals_truncate ON usage_intervals;
--> statement-breakpoint
CREATE TRIGGER usage_totals_truncate AFTER TRUNCATE ON usage_intervals
  FOR EACH STATEMENT EXECUTE FUNCTION usage_totals_truncate();
--> statement-breakpoint
DELETE FROM usage_user_days;
--> statement-breakpoint
DELETE FROM usage_group_days;
--> statement-breakpoint
INSERT INTO usage_user_days AS t
      (user_name, day, kind, size_id, micros, billed_seconds, gpu_seconds, active_seconds, idle_seconds, rows)
    SELECT user_name, (started_at AT TIME ZONE 'UTC')::date, kind, size_id, sum(amount_micros), sum(billed_to - billed_from),
      sum(CASE WHEN size_class = 'gpu' THEN billed_to - billed_from ELSE 0 END),
      sum(active_seconds), sum(idle_seconds), count(*)
    FROM usage_intervals GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_name, day, kind, size_id) DO UPDATE SET
      micros = t.micros + excluded.micros, billed_seconds = t.billed_seconds + excluded.billed_seconds,
      gpu_seconds = t.gpu_seconds + excluded.gpu_seconds, active_seconds = t.active_seconds + excluded.active_seconds,
      idle_seconds = t.idle_seconds + excluded.idle_seconds, rows = t.rows + excluded.rows;
--> statement-breakpoint
INSERT INTO usage_group_days AS t (group_name, day, micros, rows)
    SELECT g.name, (r.started_at AT TIME ZONE 'UTC')::date, sum(r.amount_micros), count(*)
    FROM usage_intervals r CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(r.groups) x WHERE x IS NOT NULL) g(name)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (group_name, day) DO UPDATE SET micros = t.micros + excluded.micros, rows = t.rows + excluded.rows;
