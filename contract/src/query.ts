/** Query-string numbers: text coerced to an integer, where an empty value is no number. */
import { z } from 'zod';

/**
 * An integer from the query string, at least `min`, `def` when the parameter is absent. `?after=`
 * (empty) is refused, where `z.coerce.number()` alone reads it as 0 (found by API fuzzing).
 */
export const queryInt = (min: number, def: number) =>
  z.preprocess((v) => (v === '' ? Number.NaN : v), z.coerce.number().int().min(min).default(def));
