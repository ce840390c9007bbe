CREATE TABLE "credit_settings" (
	"id" integer PRIMARY KEY NOT NULL,
	"lower_charges" boolean DEFAULT false NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_settings_one_row" CHECK ("credit_settings"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE "usage_intervals" ADD COLUMN "credit_micros" bigint DEFAULT 0 NOT NULL;