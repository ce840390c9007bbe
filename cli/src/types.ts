/** Types of the API's answers, inferred from the contract's schemas (some export no type of their own). */
import type { z } from 'zod';
import type * as C from '@ngsci/contract';

export type InstanceList = z.infer<typeof C.InstanceList>;
export type QuotaList = z.infer<typeof C.QuotaList>;
export type PlanList = z.infer<typeof C.PlanList>;
export type AdminUserList = z.infer<typeof C.AdminUserList>;
