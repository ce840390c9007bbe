-- What a client acts on, apart from the words (contract InstanceEvent.kind): `spot_notice` when the
-- cloud announced it takes a spot machine back. The notices recorded before this column are found
-- by the words every service so far wrote in them.
ALTER TABLE "instance_events" ADD COLUMN IF NOT EXISTS "kind" text;
--> statement-breakpoint
UPDATE "instance_events" SET "kind" = 'spot_notice'
  WHERE "kind" IS NULL AND "message" LIKE '%announced it takes this spot machine back%';
