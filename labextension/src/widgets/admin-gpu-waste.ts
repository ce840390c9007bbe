/**
 * The admin panel's "GPU money wasted" part: users and groups ranked by what their GPU instances
 * cost while every GPU sat idle this month (GET /admin/gpu-waste; contract/src/gpu-waste.ts).
 */
import type { GpuWasteRanking } from '@ngsci/contract';
import { h } from '../dom';
import { formatMicros } from '../format';
import { gpuWasteRow } from '../gpu-idle';
import { part, table, type Part } from './admin-kit';

const HEAD = ['Idle GPU', 'Idle share', 'Wasted'];

export function gpuWastePart(p: Part<GpuWasteRanking>): HTMLElement {
  return part('GPU money wasted', p, (d) =>
    h(
      'div',
      {},
      h(
        'p',
        { class: 'jp-ngsci-hint' },
        `${d.month}: billed GPU time with every GPU below ${d.thresholdPercent}% utilisation, ` +
          `${formatMicros(d.totalIdleMicros)} in all. Most first.`,
      ),
      d.users.length
        ? table(['User', ...HEAD], d.users.map(gpuWasteRow), 'GPU money wasted by user')
        : h('p', { class: 'jp-ngsci-hint' }, 'No idle GPU time this month.'),
      d.groups.length
        ? table(['Group', ...HEAD], d.groups.map(gpuWasteRow), 'GPU money wasted by group')
        : '',
    ),
  );
}
