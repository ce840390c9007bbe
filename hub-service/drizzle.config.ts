import { defineConfig } from 'drizzle-kit';

// Every table lives under tables/ (core.ts: instances, jobs, plans); schema.ts only re-exports them.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/tables/*.ts',
  out: './drizzle',
});
