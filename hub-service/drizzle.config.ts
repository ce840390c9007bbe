import { defineConfig } from 'drizzle-kit';

// schema.ts holds the core tables; each feature adds its own file under tables/.
export default defineConfig({
  dialect: 'postgresql',
  schema: ['./src/db/schema.ts', './src/db/tables/*.ts'],
  out: './drizzle',
});
