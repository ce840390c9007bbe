CREATE TABLE "gpu_idle_group_days" (
	"group_name" text NOT NULL,
	"day" date NOT NULL,
	"sampled_seconds" bigint NOT NULL,
	"idle_seconds" bigint NOT NULL,
	"micros" bigint NOT NULL,
	"rows" integer NOT NULL,
	CONSTRAINT "gpu_idle_group_days_group_name_day_pk" PRIMARY KEY("group_name","day")
);
--> statement-breakpoint
CREATE TABLE "gpu_idle_intervals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"meter_key" text NOT NULL,
	"user_name" text NOT NULL,
	"groups" text[] DEFAULT '{}'::text[] NOT NULL,
	"instance_id" uuid,
	"server_name" text,
	"size_id" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone NOT NULL,
	"sampled_seconds" integer NOT NULL,
	"idle_seconds" integer NOT NULL,
	"idle_from" bigint NOT NULL,
	"idle_to" bigint NOT NULL,
	"threshold_percent" integer NOT NULL,
	"plan_id" text NOT NULL,
	"multiplier_ppm" integer NOT NULL,
	"rate_micros" bigint NOT NULL,
	"rate_period_seconds" integer NOT NULL,
	"amount_micros" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "gpu_idle_user_days" (
	"user_name" text NOT NULL,
	"day" date NOT NULL,
	"size_id" text NOT NULL,
	"sampled_seconds" bigint NOT NULL,
	"idle_seconds" bigint NOT NULL,
	"micros" bigint NOT NULL,
	"rows" integer NOT NULL,
	CONSTRAINT "gpu_idle_user_days_user_name_day_size_id_pk" PRIMARY KEY("user_name","day","size_id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "gpu_idle_intervals_stream_start" ON "gpu_idle_intervals" USING btree ("meter_key","started_at");--> statement-breakpoint
CREATE INDEX "gpu_idle_intervals_user_start" ON "gpu_idle_intervals" USING btree ("user_name","started_at");