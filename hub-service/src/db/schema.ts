/**
 * The database schema, one import for the whole of it: every table lives in a file of its own
 * feature under tables/ (core.ts holds instances, jobs and plans); this file only re-exports them,
 * so no table file imports it back.
 */
export * from './tables/core.js';
export * from './tables/metering.js';
export * from './tables/bootstrap.js';
export * from './tables/notify.js';
export * from './tables/audit.js';
export * from './tables/agent.js';
export * from './tables/trust.js';
export * from './tables/idle.js';
export * from './tables/credits.js';
export * from './tables/gpu-waste.js';
export * from './tables/preemption.js';
