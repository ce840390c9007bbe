ALTER TABLE "instances" ADD COLUMN "resize_target" jsonb;--> statement-breakpoint
ALTER TABLE "instances" ADD COLUMN "resize_state" text;