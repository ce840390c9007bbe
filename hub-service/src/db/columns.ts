/**
 * Column helpers every table file shares, so one timestamp rule holds for the whole schema:
 * with time zone, read as a JS Date.
 */
import { timestamp } from 'drizzle-orm/pg-core';

export const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
