/**
 * Primitives the usage, billing and admin schemas share. They repeat index.ts's definitions
 * without registry ids, because index.ts re-exports those modules (an import back into index.ts
 * would be a cycle that ESM evaluates before index.ts's own body).
 */
import { z } from 'zod';

export const MicrosInt = z.number().int().safe().meta({ description: 'integer micro-dollars' });
export const SizeIdString = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'a size id such as cpu-small or gpu-a100');
export const CloudName = z.enum(['local', 'aws', 'gcp', 'azure']);
