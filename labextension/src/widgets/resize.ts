/**
 * The Resize section: every size of the catalog with its price, what it does to the month, the
 * remaining budget's runway at that size ("3 h 12 min left in your budget"), the idle timeout
 * that applies, and a Resize button; sizes a quota forbids are listed disabled with the reason.
 * Its own section of the sidebar, so the sizes are in sight without scrolling the Instance part.
 * Below the sizes, a CPU package and a GPU package combine into a pair (`m.t4`): its rate on the
 * cloud, the machine, what that gives beyond the ask, or why the pair is not there (pairs.ts).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { CpuPackageId, GpuPackageId, Instance, SizeRunway } from '@ngsci/contract';
import { pairOffer } from '../pairs';
import { Widget } from '@lumino/widgets';
import { h, notice } from '../dom';
import { formatDelta, formatMicros, formatRate } from '../format';
import type { INgsciModel } from '../tokens';
import { monthProjection } from '../projection';
import { NgsciSection } from './section';
import type { InstanceActions } from './instance';
import { runwayLine } from '../runway';
import {
  formatBytes,
  runInAll,
  summarize,
  type KeepStateKernel,
  type KernelKeepReport,
} from '../keep-state';

/** What the resize needs besides the model: saving documents, and the kernels to keep. */
export interface ResizeActions extends Pick<InstanceActions, 'saveAll'> {
  /** the server's kernels, for "Keep my variables" (absent: the choice is not offered) */
  kernels?: () => Promise<KeepStateKernel[]>;
}

export class ResizeSection extends NgsciSection {
  constructor(
    model: INgsciModel,
    private readonly actions: ResizeActions,
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
  /** the pair being combined: a CPU package (null: none chosen yet) and a GPU package */
  private pairCpu: CpuPackageId | null = null;
  private pairGpu: GpuPackageId = 'none';

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
      this.pairs(inst, cloud, spent, burn, now, base),
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

  /** "Or combine packages": a CPU and a GPU select, the pair's offer here, and its Resize button. */
  private pairs(
    inst: Instance,
    cloud: Instance['cloud'],
    spent: number | null,
    burn: number,
    now: number,
    base: number | null,
  ): HTMLElement | null {
    const m = this.model;
    const packages = m.catalog?.packages;
    if (!packages || !m.catalog?.pairs?.length) return null;
    const select = (
      label: string,
      options: { id: string; label: string }[],
      value: string,
      set: (v: string) => void,
    ) =>
      h(
        'select',
        {
          class: 'jp-mod-styled',
          'aria-label': label,
          onchange: (e: Event) => {
            set((e.target as HTMLSelectElement).value);
            this.render();
          },
        },
        ...options.map((o) =>
          h(
            'option',
            { value: o.id, ...(o.id === value ? { selected: 'selected' } : {}) },
            o.label,
          ),
        ),
      );
    const cpuSelect = select(
      'CPU package',
      [{ id: '', label: 'CPU…' }, ...packages.cpu],
      this.pairCpu ?? '',
      (v) => (this.pairCpu = v ? (v as CpuPackageId) : null),
    );
    const gpuSelect = select('GPU package', packages.gpu, this.pairGpu, (v) => {
      this.pairGpu = v as GpuPackageId;
    });
    let line: HTMLElement | null = null;
    let button: HTMLElement | null = null;
    if (this.pairCpu) {
      const o = pairOffer(
        m.catalog,
        { cpu: this.pairCpu, gpu: this.pairGpu },
        { cloud, spot: inst.spot },
        m.budget?.limits.allowedSizes ?? null,
        m.budget?.limits.forbiddenSizes ?? [],
      );
      if (!o.available) {
        line = h(
          'p',
          { class: 'jp-ngsci-hint jp-ngsci-pair-offer', 'data-testid': 'ngsci-pair-offer' },
          o.forbidden ? `Unavailable: ${o.reason}` : `Not on ${cloud}: ${o.reason}`,
        );
      } else {
        // the rate the sizes above show: the plan's multiplier applied
        o.rate = m.rateOf(o.size.id, cloud, inst.spot) ?? o.rate;
        const label = cloud === inst.cloud ? o.size.label : `${o.size.label} on ${cloud}`;
        const current = o.size.id === inst.size && cloud === inst.cloud;
        const projected =
          spent !== null
            ? monthProjection({
                spentMicros: spent,
                burnMicrosPerHour: burn,
                now,
                replaceRate: { from: inst.ratePerHourMicros, to: o.rate },
              })
            : null;
        line = h(
          'p',
          { class: 'jp-ngsci-pair-offer', 'data-testid': 'ngsci-pair-offer' },
          `${formatRate(o.rate)} on ${o.machine}`,
          o.beyondAsk ? `; ${o.beyondAsk}` : '',
          o.forbidden ? h('span', { class: 'jp-mod-forbidden' }, ` · ${o.forbidden}`) : null,
        );
        button = current
          ? h('span', { class: 'jp-ngsci-size-effect' }, 'current')
          : h(
              'button',
              {
                class: 'jp-mod-styled jp-ngsci-resize-btn',
                type: 'button',
                'aria-label': `Resize to ${label}`,
                disabled: o.forbidden !== null,
                title: o.forbidden,
                onclick: () =>
                  void this.confirmResize(
                    o.size.id,
                    label,
                    o.rate,
                    projected,
                    base,
                    cloud === inst.cloud ? undefined : cloud,
                  ),
              },
              'Resize',
            );
      }
    }
    return h(
      'div',
      { class: 'jp-ngsci-pairs' },
      h('p', { class: 'jp-ngsci-hint' }, 'Or combine a CPU package with a GPU package:'),
      cpuSelect,
      gpuSelect,
      button,
      line,
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
    const keep = this.actions.kernels ? new KeepChoice(this.actions.kernels) : null;
    const dialog = new Dialog({
      title: `Resize to ${label}?`,
      body: new Widget({
        node: h('div', {}, ...lines.map((l) => h('p', {}, l)), keep ? keep.node : null),
      }),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Save and resize' })],
    });
    keep?.attach(dialog.node.querySelector<HTMLButtonElement>('.jp-mod-accept'));
    const res = await dialog.launch();
    if (!res.button.accept) return;
    this.busy = true;
    const kept: KernelKeepReport[] = [];
    try {
      if (keep?.checked) {
        // accepted before the check finished: what cannot be kept is shown now, before anything
        const checked = await keep.result();
        if (!keep.shown && !(await confirmUnkept(summarize(checked).notKept, label))) return;
        await this.actions.saveAll();
        const saved = await runInAll(await this.actions.kernels!(), 'save');
        kept.push(...saved.filter((r) => r.ok));
        // a save can lose more than the check said (a kernel went busy, the disk filled up)
        const shown = new Set(summarize(checked).notKept);
        const fresh = summarize(saved).notKept.filter((l) => !shown.has(l));
        if (fresh.length && !(await confirmUnkept(fresh, label))) {
          await this.discard(kept);
          return;
        }
      } else {
        await this.actions.saveAll();
      }
      await this.model.resize(this.model.server, sizeId, cloud);
    } catch (err) {
      await this.discard(kept);
      const msg = (err as { userMessage?: string }).userMessage ?? (err as Error).message;
      void showDialog({ title: 'ngsci', body: msg, buttons: [Dialog.okButton()] });
    } finally {
      this.busy = false;
      this.render();
    }
  }

  /** Deletes the snapshots saved for a resize that was not made after all. */
  private async discard(saved: KernelKeepReport[]): Promise<void> {
    if (!saved.length || !this.actions.kernels) return;
    const paths = new Set(saved.map((r) => r.path));
    const kernels = await this.actions.kernels().catch(() => []);
    await runInAll(
      kernels.filter((k) => paths.has(k.path)),
      'discard',
    );
  }
}

/** "These cannot be kept: resize anyway?" */
async function confirmUnkept(notKept: string[], label: string): Promise<boolean> {
  if (!notKept.length) return true;
  const res = await showDialog({
    title: 'Some variables cannot be kept',
    body: new Widget({
      node: h(
        'div',
        {},
        h('p', {}, `These are lost when the machine restarts on ${label}:`),
        h('ul', { class: 'jp-ngsci-keep-state-lost' }, ...notKept.map((l) => h('li', {}, l))),
      ),
    }),
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Resize anyway' })],
  });
  return res.button.accept;
}

/**
 * The "Keep my variables" choice of the resize dialog: ticking it checks every kernel and lists,
 * before the user confirms, what will be kept and everything that will not (with why); the
 * dialog's accept button waits for the check.
 */
class KeepChoice {
  readonly node: HTMLElement;
  private readonly box: HTMLInputElement;
  private readonly report: HTMLElement;
  private accept: HTMLButtonElement | null = null;
  private run = 0;
  private pending: Promise<KernelKeepReport[]> | null = null;
  /** the listing the user saw: the check's result was on screen when they confirmed */
  shown = false;

  constructor(private readonly kernels: () => Promise<KeepStateKernel[]>) {
    this.box = h('input', {
      type: 'checkbox',
      class: 'jp-ngsci-keep-state-choice',
      onchange: () => void this.changed(),
    });
    this.report = h('div', {
      class: 'jp-ngsci-keep-state-report',
      'aria-live': 'polite',
      'data-testid': 'ngsci-keep-state-report',
    });
    this.node = h(
      'div',
      { class: 'jp-ngsci-keep-state' },
      h('label', {}, this.box, ' Keep my variables'),
      h(
        'p',
        { class: 'jp-ngsci-hint' },
        "Each notebook's kernel saves its variables in your home (~/.ngsci/state, counted in " +
          'your home volume) and gets them back when the notebook reopens on the new size.',
      ),
      this.report,
    );
  }

  get checked(): boolean {
    return this.box.checked;
  }

  attach(accept: HTMLButtonElement | null): void {
    this.accept = accept;
  }

  result(): Promise<KernelKeepReport[]> {
    return this.pending ?? this.check(++this.run);
  }

  private async changed(): Promise<void> {
    const run = ++this.run;
    this.shown = false;
    if (!this.box.checked) {
      this.pending = null;
      this.report.replaceChildren();
      if (this.accept) this.accept.disabled = false;
      return;
    }
    await this.check(run);
  }

  private check(run: number): Promise<KernelKeepReport[]> {
    if (this.accept) this.accept.disabled = true;
    this.report.replaceChildren(h('p', { class: 'jp-ngsci-hint' }, 'Checking what can be kept…'));
    const p = this.kernels()
      .then((ks) => runInAll(ks, 'check'))
      .catch((err: unknown) => [
        {
          label: 'this server',
          path: '',
          ok: false,
          kept: [],
          notKept: [],
          bytes: 0,
          error: { code: 'failed', message: (err as Error).message || String(err) },
        } satisfies KernelKeepReport,
      ]);
    this.pending = p;
    void p.then((reports) => {
      if (run !== this.run) return;
      this.render(reports);
      this.shown = true;
      if (this.accept) this.accept.disabled = false;
    });
    return p;
  }

  private render(reports: KernelKeepReport[]): void {
    const s = summarize(reports);
    this.report.replaceChildren(
      s.kept.length
        ? h(
            'div',
            {},
            h('p', {}, `Kept (${formatBytes(s.bytes)}):`),
            h('ul', { 'aria-label': 'Variables kept' }, ...s.kept.map((l) => h('li', {}, l))),
          )
        : h('p', {}, reports.length ? 'No variables to keep.' : 'No kernel is running.'),
      s.notKept.length
        ? h(
            'div',
            { class: 'jp-ngsci-keep-state-lost' },
            h('p', {}, 'Not kept (lost with the restart):'),
            h(
              'ul',
              { 'aria-label': 'Variables not kept' },
              ...s.notKept.map((l) => h('li', {}, l)),
            ),
          )
        : h('p', {}, reports.length ? 'Nothing is left out.' : ''),
    );
  }
}
