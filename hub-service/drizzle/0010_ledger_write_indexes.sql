-- the totals tables were made by 0009_usage_totals (with their triggers); here for the schema snapshot
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
-- spend by group or over everyone reads the totals: these two only slowed every meter insert
DROP INDEX IF EXISTS "usage_intervals_groups";--> statement-breakpoint
DROP INDEX IF EXISTS "usage_intervals_start";