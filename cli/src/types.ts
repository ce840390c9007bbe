/** Types of the API's answers, as the contract exports them (one definition, no re-declaration). */
export type { AdminUserList, InstanceList, PlanList, QuotaList } from '@ngsci/contract';
