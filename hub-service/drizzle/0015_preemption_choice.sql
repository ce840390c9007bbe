CREATE TABLE "preemption_choices" (
	"user_name" text PRIMARY KEY NOT NULL,
	"choice" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
