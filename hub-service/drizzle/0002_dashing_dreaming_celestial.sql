CREATE TABLE "bootstrap_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"instance_id" uuid NOT NULL,
	"token_hash" text NOT NULL,
	"sealed_env" text,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "bootstrap_tokens" ADD CONSTRAINT "bootstrap_tokens_instance_id_instances_id_fk" FOREIGN KEY ("instance_id") REFERENCES "public"."instances"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "bootstrap_tokens_hash" ON "bootstrap_tokens" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "bootstrap_tokens_instance" ON "bootstrap_tokens" USING btree ("instance_id");