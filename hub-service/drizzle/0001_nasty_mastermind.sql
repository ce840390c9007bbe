CREATE TABLE "budget_alerts" (
	"subject_kind" text NOT NULL,
	"subject_name" text NOT NULL,
	"month" text NOT NULL,
	"threshold" integer NOT NULL,
	"sent_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "budget_alerts_subject_kind_subject_name_month_threshold_pk" PRIMARY KEY("subject_kind","subject_name","month","threshold")
);
--> statement-breakpoint
CREATE TABLE "idle_state" (
	"instance_id" uuid PRIMARY KEY NOT NULL,
	"keep_running_at" timestamp with time zone,
	"warned_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "price_overrides" (
	"size_id" text NOT NULL,
	"cloud" text NOT NULL,
	"on_demand_micros_per_hour" bigint NOT NULL,
	"spot_micros_per_hour" bigint,
	"note" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "price_overrides_size_id_cloud_pk" PRIMARY KEY("size_id","cloud")
);
--> statement-breakpoint
CREATE TABLE "quotas" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"subject_kind" text NOT NULL,
	"subject_name" text DEFAULT '' NOT NULL,
	"monthly_budget_micros" bigint,
	"hard_stop" boolean DEFAULT false NOT NULL,
	"max_concurrent" integer,
	"allowed_sizes" text[],
	"gpu_hours_per_month" integer,
	"idle_timeout_cpu_seconds" integer,
	"idle_timeout_gpu_seconds" integer,
	"max_age_seconds" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "usage_intervals" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"meter_key" text NOT NULL,
	"kind" text NOT NULL,
	"user_name" text NOT NULL,
	"groups" text[] DEFAULT '{}'::text[] NOT NULL,
	"instance_id" uuid,
	"server_name" text,
	"size_id" text NOT NULL,
	"size_class" text NOT NULL,
	"cloud" text NOT NULL,
	"region" text NOT NULL,
	"spot" boolean DEFAULT false NOT NULL,
	"plan_id" text NOT NULL,
	"multiplier_ppm" integer NOT NULL,
	"rate_micros" bigint NOT NULL,
	"rate_period_seconds" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone NOT NULL,
	"billed_from" bigint NOT NULL,
	"billed_to" bigint NOT NULL,
	"active_seconds" integer DEFAULT 0 NOT NULL,
	"idle_seconds" integer DEFAULT 0 NOT NULL,
	"final" boolean DEFAULT false NOT NULL,
	"amount_micros" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "quotas_subject" ON "quotas" USING btree ("subject_kind","subject_name");--> statement-breakpoint
CREATE UNIQUE INDEX "usage_intervals_stream_start" ON "usage_intervals" USING btree ("meter_key","started_at");--> statement-breakpoint
CREATE INDEX "usage_intervals_user_start" ON "usage_intervals" USING btree ("user_name","started_at","amount_micros");--> statement-breakpoint
CREATE INDEX "usage_intervals_groups" ON "usage_intervals" USING gin ("groups");--> statement-breakpoint
CREATE INDEX "usage_intervals_start" ON "usage_intervals" USING btree ("started_at");