/**
 * The Resize section: every size of the catalog with its price, what it does to the month, the
 * remaining budget's runway at that size ("3 h 12 min left in your budget"), the idle timeout
 * that applies, and a Resize button; sizes a quota forbids are listed disabled with the reason.
 * Its own section of the sidebar, so the sizes are in sight without scrolling the Instance part.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { Instance, SizeRunway } from '@ngsci/contract';
import { Widget } from '@lumino/widgets';
import { h, notice } from '../dom';
import { formatDelta, formatMicros, formatRate } from '../format';
import type { INgsciModel } from '../tokens';
import { monthProjection } from '../projection';
import { NgsciSection } from './section';
import type { InstanceActions } from './instance';
import { runwayLine } from '../runway';

export class ResizeSection extends NgsciSection {
  constructor(
    model: INgsciModel,
    private readonly actions: Pick<InstanceActions, 'saveAll'>,
    refreshSeconds: () => number,
  ) {
    // the budget gives the runway per size, the burn rate and month-to-date the projections
    super(model, 'instance', { label: 'Resize', refreshSeconds, also: ['billing'] });
    this.removeClass('jp-ngsci-section-instance');
    this.addClass('jp-ngsci-section-resize');
  }

  private busy = false;
  /** the cloud the list prices and moves to; null: the instance's own */
  private resizeCloud: Instance['cloud'] | null = null;

  protected render(): void {
    const m = this.model;
    const inst = m.current;
    this.node.replaceChildren();
    if (!inst || inst.state !== 'running' || m.resizing) {
      this.node.append(
        h(
          'p',
          { class: 'jp-ngsci-hint' },
          m.resizing ? 'Resizing…' : 'Sizes can be changed while this machine runs.',
        ),
      );
      return;
    }
    this.node.append(this.list(inst));
  }

  private runwayOf(size: string, cloud: string, spot: boolean): SizeRunway | undefined {
    return this.model.budget?.runway?.find(
      (r) => r.size === size && r.cloud === cloud && r.spot === spot,
    );
  }

  private list(inst: Instance): HTMLElement {
    const m = this.model;
    const now = Date.now();
    const spent = m.monthToDate(now);
    const burn = m.burnMicrosPerHour;
    const base =
      spent !== null ? monthProjection({ spentMicros: spent, burnMicrosPerHour: burn, now }) : null;
    const cloud = this.resizeCloud ?? inst.cloud;
    const allowed = new Set(m.allowedSizes.map((s) => s.id));
    const sizes = m.catalog?.sizes ?? [];
    const offered = sizes.filter((s) => m.rateOf(s.id, cloud, inst.spot) !== null);
    const absent = sizes.filter((s) => m.rateOf(s.id, cloud, inst.spot) === null);
    const rows = offered.map((s) => {
      const rate = m.rateOf(s.id, cloud, inst.spot)!;
      const current = s.id === inst.size && cloud === inst.cloud;
      const runway = this.runwayOf(s.id, cloud, inst.spot);
      const simulated =
        runway?.simulated ?? s.offers.find((o) => o.cloud === cloud)?.simulated ?? false;
      const line = runwayLine(runway);
      const forbidden =
        line.forbidden || (!runway && !allowed.has(s.id))
          ? line.text || 'Not allowed: not among your allowed sizes'
          : null;
      const projected =
        spent !== null
          ? monthProjection({
              spentMicros: spent,
              burnMicrosPerHour: burn,
              now,
              replaceRate: { from: inst.ratePerHourMicros, to: rate },
            })
          : null;
      const effect = current
        ? 'current'
        : projected !== null && base !== null
          ? `${formatDelta(projected - base)} this month`
          : '';
      const label = cloud === inst.cloud ? s.label : `${s.label} on ${cloud}`;
      return h(
        'li',
        {
          class: `jp-ngsci-size-option${current ? ' jp-mod-current' : ''}${forbidden ? ' jp-mod-forbidden' : ''}`,
        },
        h(
          'span',
          { class: 'jp-ngsci-size-label' },
          s.label,
          simulated
            ? h(
                'span',
                {
                  class: 'jp-ngsci-simulated',
                  title: "simulated: a process on the hub's machine, without a GPU",
                },
                ' · simulated',
              )
            : null,
        ),
        h('span', { class: 'jp-ngsci-size-rate' }, formatRate(rate)),
        h(
          'span',
          {
            class: 'jp-ngsci-size-effect',
            title: projected !== null ? `month projected at ${formatMicros(projected)}` : null,
          },
          effect,
        ),
        current
          ? null
          : h(
              'button',
              {
                class: 'jp-mod-styled jp-ngsci-resize-btn',
                type: 'button',
                'aria-label':
                  cloud === inst.cloud ? `Resize to ${s.label}` : `Move to ${s.label} on ${cloud}`,
                disabled: forbidden !== null,
                title: forbidden,
                onclick: () =>
                  void this.confirmResize(
                    s.id,
                    label,
                    rate,
                    projected,
                    base,
                    cloud === inst.cloud ? undefined : cloud,
                  ),
              },
              'Resize',
            ),
        forbidden || line.text
          ? h(
              'span',
              {
                class: `jp-ngsci-size-runway${forbidden ? ' jp-mod-forbidden' : ''}`,
                'data-testid': 'ngsci-size-runway',
              },
              forbidden ?? line.text,
            )
          : null,
      );
    });
    const absentNote = absent.length
      ? h(
          'p',
          { class: 'jp-ngsci-hint jp-ngsci-size-absent' },
          `Not on ${cloud}: ${absent.map((s) => s.label).join(', ')}`,
          absent.every((s) => s.offers.find((o) => o.cloud === cloud)?.simulated)
            ? ' (this machine has no GPU).'
            : '.',
        )
      : null;
    return h(
      'div',
      { class: 'jp-ngsci-resize' },
      m.clouds.length > 1
        ? h(
            'label',
            { class: 'jp-ngsci-cloud-choice' },
            'Cloud ',
            h(
              'select',
              {
                class: 'jp-mod-styled',
                'aria-label': 'Cloud to resize on',
                onchange: (e: Event) => {
                  this.resizeCloud = (e.target as HTMLSelectElement).value as Instance['cloud'];
                  this.render();
                },
              },
              ...m.clouds.map((c) =>
                h('option', { value: c, ...(c === cloud ? { selected: 'selected' } : {}) }, c),
              ),
            ),
          )
        : null,
      h('ul', { class: 'jp-ngsci-size-list', 'aria-label': 'Sizes' }, ...rows),
      absentNote,
      base !== null
        ? h(
            'p',
            { class: 'jp-ngsci-hint' },
            `At this rate the month comes to ${formatMicros(base, { precise: false })}.`,
          )
        : null,
      m.errors.billing ? notice('warn', 'Budget figures are unavailable just now.') : null,
    );
  }

  async confirmResize(
    sizeId: string,
    label: string,
    rate: number | null,
    projected: number | null,
    base: number | null,
    cloud?: string,
  ): Promise<void> {
    if (this.busy) return;
    const lines = [
      `The machine restarts on ${label}${rate !== null ? ` at ${formatRate(rate)}` : ''}; this takes a minute or more.`,
      'Every open document is saved first; running kernels stop.',
    ];
    if (projected !== null && base !== null)
      lines.push(
        `This month: ${formatMicros(base, { precise: false })} → ${formatMicros(projected, { precise: false })} at the new rate.`,
      );
    const res = await showDialog({
      title: `Resize to ${label}?`,
      body: new Widget({ node: h('div', {}, ...lines.map((l) => h('p', {}, l))) }),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Save and resize' })],
    });
    if (!res.button.accept) return;
    this.busy = true;
    try {
      await this.actions.saveAll();
      await this.model.resize(this.model.server, sizeId, cloud);
    } catch (err) {
      const msg = (err as { userMessage?: string }).userMessage ?? (err as Error).message;
      void showDialog({ title: 'ngsci', body: msg, buttons: [Dialog.okButton()] });
    } finally {
      this.busy = false;
      this.render();
    }
  }
}
