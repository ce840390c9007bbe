-- Which instances changed since the meter's last read (metering/instance-snapshot.ts): every insert
-- or update stamps the row with its transaction's id. The meter reads the rows stamped at or after
-- the xmin of its previous read's snapshot, so a transaction that commits out of order is still
-- seen. Rows from before stay NULL (unchanged since; every meter's first read reads every row).
-- Not in the drizzle schema: no query but that one reads it, and the trigger writes it.
ALTER TABLE "instances" ADD COLUMN IF NOT EXISTS "changed_xid" xid8;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION instances_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed_xid := pg_current_xact_id();
  RETURN NEW;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS instances_changed ON instances;
--> statement-breakpoint
CREATE TRIGGER instances_changed BEFORE INSERT OR UPDATE ON instances
  FOR EACH ROW EXECUTE FUNCTION instances_changed();
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "instances_changed_xid" ON "instances" USING btree ("changed_xid");
