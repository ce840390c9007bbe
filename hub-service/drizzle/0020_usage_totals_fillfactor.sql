-- The per-day totals are updated in place by every meter insert (usage_totals_apply): today's row
-- of every user with a stream, each cycle. With pages packed full (fillfactor 100) each update
-- moved the row to a new page and added an index entry (0.4 % HOT updates measured), so the table
-- and its primary key bloated cycle after cycle until a vacuum; half-empty pages keep the new
-- version on the same page (99.5 % HOT), the upsert 30-40 % cheaper at 10,000 rows a cycle and
-- the table a third of the size. Only pages written from now on are affected.
ALTER TABLE "usage_user_days" SET (fillfactor = 50);
--> statement-breakpoint
ALTER TABLE "usage_group_days" SET (fillfactor = 50);
