CREATE TABLE "instance_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" uuid NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"state" text NOT NULL,
	"progress" integer NOT NULL,
	"message" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instance_secrets" (
	"instance_id" uuid PRIMARY KEY NOT NULL,
	"ciphertext" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instances" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_name" text NOT NULL,
	"server_name" text NOT NULL,
	"size_id" text NOT NULL,
	"cloud" text NOT NULL,
	"region" text NOT NULL,
	"spot" boolean DEFAULT false NOT NULL,
	"state" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"exit_code" integer,
	"list_rate_per_hour_micros" bigint NOT NULL,
	"base_url" text NOT NULL,
	"target_url" text,
	"provider_ref" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp with time zone,
	"stop_requested_at" timestamp with time zone,
	"stopped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"instance_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"state" text NOT NULL,
	"tag" text DEFAULT 'local' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"claimed_by" text,
	"heartbeat_at" timestamp with time zone,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "plan_assignments" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"subject_kind" text NOT NULL,
	"subject_name" text NOT NULL,
	"plan_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plans" (
	"id" text PRIMARY KEY NOT NULL,
	"label" text NOT NULL,
	"multiplier_ppm" integer NOT NULL,
	"built_in" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "instance_events" ADD CONSTRAINT "instance_events_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "instance_secrets" ADD CONSTRAINT "instance_secrets_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plan_assignments" ADD CONSTRAINT "plan_assignments_plan_id_plans_id_fk" FOREIGN KEY ("plan_id") REFERENCES "public"."plans"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "instance_events_instance" ON "instance_events" USING btree ("instance_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "instances_one_active_per_server" ON "instances" USING btree ("user_name","server_name") WHERE state not in ('stopped', 'failed');--> statement-breakpoint
CREATE INDEX "instances_user_created" ON "instances" USING btree ("user_name","created_at");--> statement-breakpoint
CREATE INDEX "instances_state" ON "instances" USING btree ("state");--> statement-breakpoint
CREATE INDEX "jobs_queue" ON "jobs" USING btree ("state","tag","id");--> statement-breakpoint
CREATE INDEX "jobs_instance" ON "jobs" USING btree ("instance_id");--> statement-breakpoint
CREATE UNIQUE INDEX "plan_assignments_subject" ON "plan_assignments" USING btree ("subject_kind","subject_name");