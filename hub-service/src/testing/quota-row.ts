/**
 * A quota row for tests of the limit rules: every limit unset unless `over` sets it, so a test
 * names only what it is about. Shared by the idle-bounds and forbidden-package tests.
 */
import type { QuotaRow } from '../metering/quotas.js';

export const quotaRow = (over: Partial<QuotaRow>): QuotaRow => ({
  id: 1,
  subjectKind: 'default',
  subjectName: '',
  monthlyBudgetMicros: null,
  hardStop: false,
  maxConcurrent: null,
  allowedSizes: null,
  forbiddenSizes: null,
  gpuHoursPerMonth: null,
  idleTimeoutCpuSeconds: null,
  idleTimeoutGpuSeconds: null,
  idleTimeoutCpuMinSeconds: null,
  idleTimeoutCpuMaxSeconds: null,
  idleTimeoutGpuMinSeconds: null,
  idleTimeoutGpuMaxSeconds: null,
  maxAgeSeconds: null,
  createdAt: new Date(0),
  updatedAt: new Date(0),
  ...over,
});

/** The service's built-in idle defaults, as the limit rules receive them. */
export const QUOTA_DEFAULTS = {
  idleTimeoutCpuSeconds: 3600,
  idleTimeoutGpuSeconds: 1800,
  maxAgeSeconds: 0,
};
