ALTER TABLE "instances" ADD COLUMN "on_preemption" text;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "spot_notice_at" timestamp with time zone;