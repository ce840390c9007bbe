/**
 * The Usage section: the last 30 days of cost by size as a stacked bar chart (uPlot, coloured
 * from JupyterLab's CSS variables so dark themes work), hours and cost per size, and GPU
 * utilisation once the instance's agent reports it.
 */
// uPlot is loaded the first time a chart is drawn, so it costs nothing at JupyterLab's start
import type uPlot from 'uplot';
import type { Message } from '@lumino/messaging';
import { h, notice } from '../dom';
import { formatHours, formatMicros } from '../format';
import type { INgsciModel } from '../tokens';
import { startOfDayUtc } from '../projection';
import { dollarTicks, stack, usageTable } from '../usage-series';
import { gpuIdleHint, gpuIdleLine } from '../gpu-idle';
import { NgsciSection } from './section';

const DAYS = 30;
const PALETTE = [
  '--jp-brand-color1',
  '--jp-accent-color1',
  '--jp-warn-color1',
  '--jp-success-color1',
  '--jp-error-color1',
  '--jp-brand-color3',
];

export class UsageSection extends NgsciSection {
  private plot: uPlot | null = null;
  private totalEl: HTMLElement | null = null;
  private rowEls = new Map<string, { hours: HTMLElement; cost: HTMLElement }>();
  private gpuText: string | null = null;
  private gpuChecked = 0;
  /** `idle GPU: 3.2 h, $8.40 this month` (GET /usage's gpuIdle), and what idle means */
  private gpuIdle: { text: string; hint: string } | null = null;
  private gpuIdleChecked = 0;

  constructor(model: INgsciModel, refreshSeconds: () => number) {
    super(model, 'usage', { label: 'Usage', refreshSeconds });
  }

  /** Re-colours the chart after a theme change. */
  restyle(): void {
    if (this.isVisible) this.render();
  }

  protected render(): void {
    this.plot?.destroy();
    this.plot = null;
    const m = this.model;
    const node = this.node;
    node.replaceChildren();
    const err = m.errors.usage;
    if (err) {
      node.append(
        notice(
          err.code === 'endpoint_missing' ? 'info' : 'error',
          err.code === 'endpoint_missing'
            ? 'Usage history is not available from this ngsci service yet.'
            : err.userMessage,
        ),
      );
    }
    if (m.usage) {
      const from = startOfDayUtc(m.serviceNow()) - (DAYS - 1) * 86_400_000;
      const t = usageTable(m.usage, from, DAYS);
      // the table: every size with usage or running, live (contract figures.ts usageBySize)
      const rows = m.usageRows();
      this.totalEl = h('span', { class: 'jp-ngsci-usage-total' });
      this.rowEls = new Map();
      node.append(h('p', { class: 'jp-ngsci-hint' }, `Last ${DAYS} days: `, this.totalEl));
      const chart = h('div', {
        class: 'jp-ngsci-chart',
        role: 'img',
        'aria-label': `Cost per day by size over the last ${DAYS} days`,
      });
      node.append(chart);
      if (t.sizes.length) void this.draw(chart, t);
      else chart.append(h('p', { class: 'jp-ngsci-hint' }, 'No usage in the last 30 days.'));
      node.append(
        h(
          'table',
          { class: 'jp-ngsci-table', 'aria-label': 'Usage by size' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Size'),
              h('th', { scope: 'col' }, 'Hours'),
              h('th', { scope: 'col' }, 'Cost'),
            ),
          ),
          h(
            'tbody',
            {},
            ...rows.map((r) => {
              const hours = h('td', {}, formatHours(r.seconds));
              const cost = h('td', {}, formatMicros(r.micros));
              this.rowEls.set(r.size, { hours, cost });
              return h('tr', {}, h('td', {}, r.size), hours, cost);
            }),
          ),
        ),
      );
      this.tick();
    } else if (!err) node.append(notice('info', 'Loading…'));
    node.append(
      h('h3', { class: 'jp-ngsci-subhead' }, 'GPU utilisation'),
      h(
        'p',
        { class: 'jp-ngsci-hint jp-ngsci-gpu' },
        this.gpuText ?? "Shown here once the instance's agent reports it.",
      ),
      this.gpuIdle
        ? h(
            'p',
            { class: 'jp-ngsci-hint jp-ngsci-gpu-idle', title: this.gpuIdle.hint },
            this.gpuIdle.text,
          )
        : '',
    );
  }

  /** The total and the rows move every second with the running part (the chart per refresh). */
  protected override tick(): void {
    const rows = this.model.usageRows();
    if (this.totalEl)
      this.totalEl.textContent = formatMicros(rows.reduce((a, r) => a + r.micros, 0));
    for (const r of rows) {
      const el = this.rowEls.get(r.size);
      if (!el) continue;
      el.hours.textContent = formatHours(r.seconds);
      el.cost.textContent = formatMicros(r.micros);
    }
  }

  protected override onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    void this.refreshGpu();
    void this.refreshGpuIdle();
  }

  /** This month's idle GPU time and its cost, as the meter wrote it (at most once a minute). */
  private async refreshGpuIdle(): Promise<void> {
    if (Date.now() - this.gpuIdleChecked < 60_000) return;
    this.gpuIdleChecked = Date.now();
    const now = new Date(this.model.serviceNow());
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    try {
      const u = await this.model.api.usage({ from, granularity: 'month' });
      const text = gpuIdleLine(u.gpuIdle);
      this.gpuIdle = text && u.gpuIdle ? { text, hint: gpuIdleHint(u.gpuIdle) } : null;
    } catch {
      this.gpuIdle = null; // an older service without the figure: say nothing
    }
    if (this.isVisible) this.render();
  }

  private async refreshGpu(): Promise<void> {
    const inst = this.model.current;
    if (!inst || inst.state !== 'running' || Date.now() - this.gpuChecked < 30_000) return;
    this.gpuChecked = Date.now();
    try {
      const status = await this.model.api.gpu(inst.server);
      if (status.reportedAt && status.gpus.length) {
        this.gpuText = status.gpus
          .map((g) => {
            const util = g.utilizationPercent === null ? '—' : `${g.utilizationPercent}%`;
            const mem =
              g.memoryUsedMiB !== null && g.memoryTotalMiB
                ? ` · ${Math.round(g.memoryUsedMiB / 1024)} of ${Math.round(g.memoryTotalMiB / 1024)} GiB`
                : '';
            return `GPU ${g.index} (${g.name}): ${util}${mem}`;
          })
          .join('\n');
      } else if (status.reportedAt) {
        this.gpuText = 'This machine has no GPU.';
      } else this.gpuText = null;
    } catch {
      this.gpuText = null; // no agent report (or no endpoint): keep the placeholder
    }
    if (this.isVisible) this.render();
  }

  private async draw(el: HTMLElement, t: ReturnType<typeof usageTable>): Promise<void> {
    const { default: UPlot } = await import('uplot');
    if (!el.isConnected) return; // re-rendered meanwhile
    this.plot?.destroy();
    const css = getComputedStyle(this.node);
    const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
    const fg = v('--jp-ui-font-color2', '#666');
    const grid = v('--jp-border-color2', '#ddd');
    const font = `10px ${v('--jp-ui-font-family', 'sans-serif')}`;
    const stacked = stack(t.cost.map((r) => r.map((x) => x / 1_000_000)));
    const bars = UPlot.paths.bars!({ size: [0.7, 24] });
    // the tallest (cumulative) series first, so each lower one is drawn over it
    const order = stacked.map((_, i) => i).reverse();
    const width = Math.max(180, (this.node.clientWidth || 260) - 8);
    this.plot = new UPlot(
      {
        width,
        height: 140,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, Math.max(max, 0.001) * 1.15] },
        },
        axes: [
          {
            stroke: fg,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid },
            font,
            values: (_u, ticks) =>
              ticks.map((s) =>
                new Date(s * 1000).toLocaleDateString(undefined, {
                  month: 'short',
                  day: 'numeric',
                }),
              ),
          },
          {
            stroke: fg,
            grid: { stroke: grid, width: 1 },
            ticks: { stroke: grid },
            font,
            size: 56,
            values: (_u, ticks) => dollarTicks(ticks),
          },
        ],
        series: [
          {},
          ...order.map((i) => {
            const colour = v(PALETTE[i % PALETTE.length]!, '#1976d2');
            return {
              label: t.sizes[i],
              stroke: colour,
              fill: colour,
              width: 0,
              paths: bars,
              points: { show: false },
              value: (_u: uPlot, x: number | null) =>
                x === null ? '—' : formatMicros(Math.round(x * 1_000_000)),
            };
          }),
        ],
      },
      [t.days, ...order.map((i) => stacked[i]!)],
      el,
    );
  }

  override dispose(): void {
    this.plot?.destroy();
    super.dispose();
  }
}
