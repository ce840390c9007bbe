/**
 * How far a resize has got, as one bar: the old instance stopping fills the first half, the new
 * one starting the second. DOM-free.
 */
import { formatState } from './format';
import type { ResizeProgress } from './model';

export function resizeProgress(r: ResizeProgress): {
  percent: number;
  text: string;
  failed: boolean;
} {
  if (r.failed)
    return { percent: 100, text: `The resize to ${r.toSize} failed: ${r.failed}`, failed: true };
  if (r.readyInstanceId)
    return { percent: 100, text: `${r.toSize} is running. Reopening JupyterLab…`, failed: false };
  const last = r.last;
  if (!last) return { percent: 2, text: `Resizing to ${r.toSize}…`, failed: false };
  const newOne = last.instanceId !== r.fromInstanceId;
  const percent = newOne ? 50 + Math.floor(last.progress / 2) : Math.floor(last.progress / 2);
  return {
    percent: Math.max(2, Math.min(100, percent)),
    text: `Resizing to ${r.toSize} — ${formatState(last.state)}: ${last.message}`,
    failed: false,
  };
}
