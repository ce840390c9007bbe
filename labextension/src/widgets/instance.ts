/**
 * The Instance section: this server's size, cloud, state, uptime, rate and live cost; the countdown
 * before a budget's hard stop; stop; the user's other servers; start-up progress. Resizing is its
 * own section (resize.ts).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { Instance } from '@ngsci/contract';
import { h, notice, row } from '../dom';
import { formatDuration, formatMicros, formatRate, formatState } from '../format';
import type { INgsciModel } from '../tokens';
import { uptimeMs } from '../projection';
import { resizeProgress } from '../resize-progress';
import { stopCountdown } from '../countdown';
import { NgsciSection } from './section';
import { PreemptionControl } from './preemption';

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
    // the budget gives the countdown before a hard stop
    super(model, 'instance', { label: 'Instance', refreshSeconds, also: ['billing'] });
  }

  private costEl: HTMLElement | null = null;
  private countdownEl: HTMLElement | null = null;
  private uptimeEl: HTMLElement | null = null;
  private busy = false;
  /** the researcher's spot preemption default (preemption.ts), kept across renders */
  private preemption: PreemptionControl | null = null;

  protected render(): void {
    const m = this.model;
    const node = this.node;
    node.replaceChildren();
    const err = m.errors.instance ?? m.errors.me;
    if (err) node.append(notice('error', err.userMessage));
    // a spent hard-stop budget: the countdown to the stop (countdown.ts)
    this.countdownEl = h('div', {
      class: 'jp-ngsci-notice jp-ngsci-notice-error jp-ngsci-countdown',
      role: 'timer',
      'aria-live': 'off',
      hidden: true,
    });
    node.append(this.countdownEl);

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
      }
    }
    this.preemption ??= new PreemptionControl(this.model);
    this.preemption.refreshIfStale();
    node.append(
      h('h3', { class: 'jp-ngsci-subhead' }, 'Spot preemption'),
      this.preemption.node,
      this.others(),
    );
    this.tick();
  }

  protected override tick(): void {
    const stop = stopCountdown(this.model.budget, this.model.serviceNow());
    if (this.countdownEl) {
      this.countdownEl.hidden = !stop;
      this.countdownEl.textContent = stop
        ? `Your monthly budget is spent: this machine ${stop.text}. Open documents are saved a minute before.`
        : '';
    }
    const inst = this.model.current;
    if (!inst) return;
    // the service's clock and its billed-so-far figure (contract figures.ts), as every surface
    const now = this.model.serviceNow();
    if (this.costEl) {
      const up = uptimeMs(inst, now);
      const minimum = inst.state === 'running' && up !== null && up < 60_000;
      // the note on a line of its own, in plain weight; the cell's text still reads as one phrase
      this.costEl.replaceChildren(
        formatMicros(this.model.billedSoFar(inst, now)),
        ...(minimum
          ? [h('span', { class: 'jp-ngsci-cost-note' }, ' (60 s minimum billed at the stop)')]
          : []),
      );
    }
    if (this.uptimeEl) this.uptimeEl.textContent = formatDuration(uptimeMs(inst, now));
  }

  private details(inst: Instance): HTMLElement {
    const size =
      this.model.catalog?.sizes.find((s) => s.id === inst.size) ??
      this.model.catalog?.pairs?.find((s) => s.id === inst.size);
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
