CREATE TABLE "audit_chain_heads" (
	"chain" text PRIMARY KEY NOT NULL,
	"last_id" bigint,
	"last_hash" text NOT NULL,
	"anchor_id" bigint,
	"anchor_hash" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_rules" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"path" text,
	"window_seconds" integer,
	"max_files" integer,
	"max_bytes" bigint,
	"stop_server" boolean DEFAULT false NOT NULL,
	"note" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "instance_agents" (
	"instance_id" uuid PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"issued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone,
	"kernels_total" integer,
	"kernels_busy" integer,
	"kernels_at" timestamp with time zone,
	"last_busy_at" timestamp with time zone,
	"silent_since" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "security_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"kind" text NOT NULL,
	"severity" text NOT NULL,
	"user_name" text,
	"server_name" text,
	"instance_id" uuid,
	"path" text,
	"message" text NOT NULL,
	"details" jsonb
);
--> statement-breakpoint
ALTER TABLE "bootstrap_tokens" ADD COLUMN "cloud_instance_id" text;--> statement-breakpoint
ALTER TABLE "bootstrap_tokens" ADD COLUMN "redeemed_by" text;--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "chain" text;--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "prev_hash" text;--> statement-breakpoint
ALTER TABLE "audit_events" ADD COLUMN "hash" text;--> statement-breakpoint
ALTER TABLE "instance_agents" ADD CONSTRAINT "instance_agents_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "instance_agents_token" ON "instance_agents" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "security_events_at" ON "security_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "security_events_kind" ON "security_events" USING btree ("kind","at");--> statement-breakpoint
CREATE INDEX "audit_events_chain" ON "audit_events" USING btree ("chain","id");