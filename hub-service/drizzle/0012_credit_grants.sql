CREATE TABLE "credit_grants" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"cloud" text NOT NULL,
	"amount_micros" bigint NOT NULL,
	"starts_on" date NOT NULL,
	"expires_on" date NOT NULL,
	"note" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "credit_grants_amount_positive" CHECK ("credit_grants"."amount_micros" > 0),
	CONSTRAINT "credit_grants_days_in_order" CHECK ("credit_grants"."starts_on" <= "credit_grants"."expires_on"),
	CONSTRAINT "credit_grants_cloud_known" CHECK ("credit_grants"."cloud" in ('aws', 'gcp', 'azure'))
);
--> statement-breakpoint
CREATE INDEX "credit_grants_cloud" ON "credit_grants" USING btree ("cloud","expires_on");