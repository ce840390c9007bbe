/** A credit grant row for tests of the draw-down, coverage and placement rules. */
import type { GrantRow } from '../metering/credits.js';

export const grantRow = (
  id: number,
  cloud: 'aws' | 'gcp' | 'azure',
  amountMicros: number,
  startsOn: string,
  expiresOn: string,
): GrantRow => ({
  id,
  cloud,
  amountMicros,
  startsOn,
  expiresOn,
  note: null,
  createdBy: 'admin',
  createdAt: new Date('2026-01-01T00:00:00Z'),
});
