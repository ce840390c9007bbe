/**
 * The Instance section: this server's size, cloud, state, uptime, rate and live cost; resizing
 * with prices and the effect on the month; stop; the user's other servers; start-up progress.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { Instance } from '@ngsci/contract';
import { Widget } from '@lumino/widgets';
import { h, notice, row } from '../dom';
import { formatDelta, formatDuration, formatMicros, formatRate, formatState } from '../format';
import type { INgsciModel } from '../tokens';
import { costSoFar, monthProjection, uptimeMs } from '../projection';
import { resizeProgress } from '../resize-progress';
import { NgsciSection } from './section';

export interface InstanceActions {
  /** saves every open document (docmanager:save-all) */
  saveAll(): Promise<void>;
  /** called once a resize of this page's server has a running new instance */
  onResized(): void;
  /** called once this page's own server was asked to stop */
  onStoppedSelf(): void;
}

export class InstanceSection extends NgsciSection {
  constructor(
    model: INgsciModel,
    private readonly actions: InstanceActions,
    refreshSeconds: () => number,
  ) {
    // the budget's burn rate and month-to-date give the resize list its projections
    super(model, 'instance', { label: 'Instance', refreshSeconds, also: ['billing'] });
  }

  private costEl: HTMLElement | null = null;
  private uptimeEl: HTMLElement | null = null;
  private busy = false;
  /** the cloud the resize list prices and moves to; null: the instance's own */
  private resizeCloud: Instance['cloud'] | null = null;

  protected render(): void {
    const m = this.model;
    const node = this.node;
    node.replaceChildren();
    const err = m.errors.instance ?? m.errors.me;
    if (err) node.append(notice('error', err.userMessage));

    const r = m.resizing;
    if (r) node.append(this.resizeProgress());

    const inst = m.current;
    if (!inst) {
      if (!err)
        node.append(notice('info', m.catalog ? 'No instance for this server yet.' : 'Loading…'));
    } else {
      node.append(this.details(inst));
      const progress = m.progress.get(inst.server);
      if (progress && !r)
        node.append(
          progressBar(progress.progress, `${formatState(progress.state)}: ${progress.message}`),
        );
      if (inst.state === 'failed')
        node.append(
          notice('error', `Failed: ${inst.errorMessage ?? inst.errorCode ?? 'unknown error'}`),
        );
      if (inst.state === 'running' && !r) {
        node.append(
          h(
            'div',
            { class: 'jp-ngsci-actions' },
            h(
              'button',
              {
                class: 'jp-mod-styled jp-mod-warn jp-ngsci-stop',
                type: 'button',
                onclick: () => void this.confirmStop(inst.server),
              },
              'Stop this machine…',
            ),
          ),
        );
        node.append(this.resizeList(inst));
      }
    }
    node.append(this.others());
    this.tick();
  }

  protected override tick(): void {
    const inst = this.model.current;
    if (!inst) return;
    const now = Date.now();
    if (this.costEl) this.costEl.textContent = formatMicros(costSoFar(inst, now));
    if (this.uptimeEl) this.uptimeEl.textContent = formatDuration(uptimeMs(inst, now));
  }

  private details(inst: Instance): HTMLElement {
    const size = this.model.catalog?.sizes.find((s) => s.id === inst.size);
    this.costEl = h('span', { class: 'jp-ngsci-cost', 'data-testid': 'ngsci-cost' });
    this.uptimeEl = h('span', { class: 'jp-ngsci-uptime' });
    return h(
      'dl',
      { class: 'jp-ngsci-facts' },
      ...row(
        'Size',
        h('span', { class: 'jp-ngsci-size' }, size ? `${size.label} (${inst.size})` : inst.size),
      ),
      ...row('Cloud', `${inst.cloud} · ${inst.region}`),
      ...row('Pricing', inst.spot ? 'Spot' : 'On-demand'),
      ...row(
        'State',
        h(
          'span',
          { class: `jp-ngsci-state jp-ngsci-state-${inst.state}` },
          formatState(inst.state),
        ),
      ),
      ...row('Uptime', this.uptimeEl),
      ...row('Rate', formatRate(inst.ratePerHourMicros)),
      ...row('Cost so far', this.costEl, { 'aria-live': 'off' }),
    );
  }

  private resizeProgress(): HTMLElement {
    const p = resizeProgress(this.model.resizing!);
    if (p.failed) return notice('error', p.text);
    return h('div', { class: 'jp-ngsci-resizing', role: 'status' }, progressBar(p.percent, p.text));
  }

  private resizeList(inst: Instance): HTMLElement {
    const m = this.model;
    const now = Date.now();
    const spent = m.monthToDate(now);
    const burn = m.burnMicrosPerHour;
    const base =
      spent !== null ? monthProjection({ spentMicros: spent, burnMicrosPerHour: burn, now }) : null;
    const cloud = this.resizeCloud ?? inst.cloud;
    const rows = m.allowedSizes.map((s) => {
      const rate = m.rateOf(s.id, cloud, inst.spot);
      const current = s.id === inst.size && cloud === inst.cloud;
      const projected =
        spent !== null && rate !== null
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
      return h(
        'li',
        { class: `jp-ngsci-size-option${current ? ' jp-mod-current' : ''}` },
        h('span', { class: 'jp-ngsci-size-label' }, s.label),
        h(
          'span',
          { class: 'jp-ngsci-size-rate' },
          rate !== null ? formatRate(rate) : 'not offered',
        ),
        h(
          'span',
          {
            class: 'jp-ngsci-size-effect',
            title: projected !== null ? `month projected at ${formatMicros(projected)}` : null,
          },
          effect,
        ),
        current || rate === null
          ? null
          : h(
              'button',
              {
                class: 'jp-mod-styled jp-ngsci-resize-btn',
                type: 'button',
                'aria-label':
                  cloud === inst.cloud ? `Resize to ${s.label}` : `Move to ${s.label} on ${cloud}`,
                onclick: () =>
                  void this.confirmResize(
                    s.id,
                    cloud === inst.cloud ? s.label : `${s.label} on ${cloud}`,
                    rate,
                    projected,
                    base,
                    cloud === inst.cloud ? undefined : cloud,
                  ),
              },
              'Resize',
            ),
      );
    });
    return h(
      'div',
      { class: 'jp-ngsci-resize' },
      h('h3', { class: 'jp-ngsci-subhead' }, 'Resize'),
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
      base !== null
        ? h(
            'p',
            { class: 'jp-ngsci-hint' },
            `At this rate the month comes to ${formatMicros(base, { precise: false })}.`,
          )
        : null,
      h('ul', { class: 'jp-ngsci-size-list', 'aria-label': 'Sizes' }, ...rows),
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
    await this.run(async () => {
      await this.actions.saveAll();
      await this.model.resize(this.model.server, sizeId, cloud);
    });
  }

  async confirmStop(server: string): Promise<void> {
    if (this.busy) return;
    const self = server === this.model.server;
    const res = await showDialog({
      title: self ? 'Stop this machine?' : `Stop ${server}?`,
      body: self
        ? 'Every open document is saved first, then the machine stops and billing ends. You can start it again from the hub.'
        : `The server ${server} stops and its billing ends.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: self ? 'Save and stop' : 'Stop' }),
      ],
    });
    if (!res.button.accept) return;
    await this.run(async () => {
      if (self) await this.actions.saveAll();
      await this.model.stop(server);
      if (self) this.actions.onStoppedSelf();
    });
  }

  private async run(fn: () => Promise<void>): Promise<void> {
    this.busy = true;
    try {
      await fn();
    } catch (err) {
      const msg = (err as { userMessage?: string }).userMessage ?? (err as Error).message;
      void showDialog({ title: 'ngsci', body: msg, buttons: [Dialog.okButton()] });
    } finally {
      this.busy = false;
      this.render();
    }
  }

  private others(): HTMLElement {
    const m = this.model;
    const items = m.otherServers.map((i) => {
      const active = m.isActive(i);
      const progress = m.progress.get(i.server);
      return h(
        'li',
        { class: 'jp-ngsci-server' },
        h('span', { class: 'jp-ngsci-server-name' }, i.server),
        h('span', { class: 'jp-ngsci-server-size' }, i.size),
        h(
          'span',
          { class: `jp-ngsci-state jp-ngsci-state-${i.state}` },
          progress ? `${formatState(progress.state)} ${progress.progress}%` : formatState(i.state),
        ),
        active
          ? h(
              'button',
              {
                class: 'jp-mod-styled',
                type: 'button',
                'aria-label': `Stop ${i.server}`,
                onclick: () => void this.confirmStop(i.server),
                disabled: i.state === 'stopping',
              },
              'Stop',
            )
          : h(
              'button',
              {
                class: 'jp-mod-styled',
                type: 'button',
                'aria-label': `Start ${i.server}`,
                onclick: () => void this.run(() => m.start(i.server, i.size)),
              },
              'Start',
            ),
      );
    });
    return h(
      'div',
      { class: 'jp-ngsci-others' },
      h('h3', { class: 'jp-ngsci-subhead' }, 'Your other servers'),
      items.length
        ? h('ul', { class: 'jp-ngsci-server-list', 'aria-label': 'Other servers' }, ...items)
        : h('p', { class: 'jp-ngsci-hint' }, 'None.'),
    );
  }
}

/** A labelled progress bar (role=progressbar). */
export function progressBar(value: number, label: string): HTMLElement {
  return h(
    'div',
    { class: 'jp-ngsci-progress' },
    h('div', { class: 'jp-ngsci-progress-label' }, label),
    h(
      'div',
      {
        class: 'jp-ngsci-progress-track',
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': value,
        'aria-label': label,
      },
      h('div', {
        class: 'jp-ngsci-progress-fill',
        style: `width:${Math.max(2, Math.min(100, value))}%`,
      }),
    ),
  );
}
