ALTER TABLE "instance_agents" ADD COLUMN "boot_stage" text;--> statement-breakpoint
ALTER TABLE "instance_agents" ADD COLUMN "boot_code" text;--> statement-breakpoint
ALTER TABLE "instance_agents" ADD COLUMN "boot_message" text;--> statement-breakpoint
ALTER TABLE "instance_agents" ADD COLUMN "boot_at" timestamp with time zone;