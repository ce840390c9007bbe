ALTER TABLE "preemption_choices" ALTER COLUMN "choice" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "preemption_choices" ADD COLUMN "keep_state" boolean DEFAULT false NOT NULL;