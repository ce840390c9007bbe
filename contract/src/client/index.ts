/**
 * `@ngsci/contract/client`: the zod-free HTTP transport and SSE reader that the JupyterLab
 * extension and the CLI share. Types of the API come from `@ngsci/contract` (as types only).
 */
export { CallError, callErrorFrom, Transport } from './http.js';
export type { CallErrorKind, CallInit, Credentials, TransportOptions } from './http.js';
export { SseParser, sseMessages } from './sse.js';
export type { SseMessage } from './sse.js';
export {
  KEEP_STATE_TEXT_MAX,
  keepStateExpression,
  keepStateFailure,
  keepStateRefusal,
  parseKeepStateAnswer,
} from './keep-state.js';
export type {
  KeepStateTarget,
  KeepStateVerb,
  KeptVariable,
  KernelKeepReport,
  UnkeptVariable,
} from './keep-state.js';
