CREATE TABLE "idle_choices" (
	"user_name" text PRIMARY KEY NOT NULL,
	"cpu_seconds" integer,
	"gpu_seconds" integer,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "quotas" ADD COLUMN "idle_timeout_cpu_min_seconds" integer;--> statement-breakpoint
ALTER TABLE "quotas" ADD COLUMN "idle_timeout_cpu_max_seconds" integer;--> statement-breakpoint
ALTER TABLE "quotas" ADD COLUMN "idle_timeout_gpu_min_seconds" integer;--> statement-breakpoint
ALTER TABLE "quotas" ADD COLUMN "idle_timeout_gpu_max_seconds" integer;