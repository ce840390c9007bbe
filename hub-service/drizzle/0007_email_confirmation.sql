CREATE TABLE "notify_uses" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_name" text NOT NULL,
	"what" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notification_preferences" ADD COLUMN "email_confirmed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "notification_preferences" ADD COLUMN "email_token_hash" text;--> statement-breakpoint
ALTER TABLE "notification_preferences" ADD COLUMN "email_token_expires_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "notify_uses_user_at" ON "notify_uses" USING btree ("user_name","what","at");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_preferences_email_token" ON "notification_preferences" USING btree ("email_token_hash") WHERE email_token_hash is not null;