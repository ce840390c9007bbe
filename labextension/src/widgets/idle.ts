/**
 * The sidebar's "Idle timeout" section: how long this user's servers may sit idle before the
 * service stops them, per size class (CPU, GPU), the bounds the admin allows, and a field to
 * choose one's own value inside them (GET/PUT /me/idle-timeout, contract idle.ts). A value
 * outside the bounds is refused with the bounds, here before it is sent and by the service; when
 * an admin narrowed the bounds after the choice, the section says which value applies instead.
 */
import { Widget } from '@lumino/widgets';
import type { Message } from '@lumino/messaging';
import { formatIdleBounds, formatIdleTimeout } from '@ngsci/contract';
import type { IdleTimeout } from '@ngsci/contract';
import { NgsciApiError } from '../api';
import { h, notice } from '../dom';
import type { INgsciModel } from '../tokens';
import { allowed, idleInputValue, parseIdleInput } from '../idle-input';

type Cls = 'cpu' | 'gpu';
const LABEL: Record<Cls, string> = { cpu: 'CPU sizes', gpu: 'GPU sizes' };
export class IdleSection extends Widget {
  private data: IdleTimeout | null = null;
  private error: NgsciApiError | null = null;
  private timer: number | null = null;
  private busy = false;
  private readonly status = h('div', { class: 'jp-ngsci-idle-status' });
  private readonly message = h('p', { class: 'jp-ngsci-form-message', role: 'status' });
  private readonly inputs: Record<Cls, HTMLInputElement>;
  private readonly figures: Record<Cls, HTMLElement>;
  private readonly saveButton: HTMLButtonElement;
  private readonly resetButton: HTMLButtonElement;

  constructor(
    private readonly model: INgsciModel,
    private readonly refreshSeconds: () => number,
  ) {
    super();
    this.addClass('jp-ngsci-section');
    this.addClass('jp-ngsci-section-idle');
    this.title.label = 'Idle timeout';
    this.node.setAttribute('aria-label', 'Idle timeout');
    const field = (c: Cls) =>
      h('input', {
        type: 'text',
        name: `idle-${c}`,
        class: 'jp-ngsci-idle-input',
        'aria-label': `Your idle timeout for ${LABEL[c]}`,
        placeholder: "admin's",
        autocomplete: 'off',
        size: 8,
      });
    this.inputs = { cpu: field('cpu'), gpu: field('gpu') };
    this.figures = {
      cpu: h('dd', { class: 'jp-ngsci-idle-cpu' }),
      gpu: h('dd', { class: 'jp-ngsci-idle-gpu' }),
    };
    this.saveButton = h(
      'button',
      { type: 'submit', class: 'jp-mod-styled jp-mod-accept jp-ngsci-idle-save' },
      'Save',
    );
    this.resetButton = h(
      'button',
      { type: 'button', class: 'jp-mod-styled jp-ngsci-idle-reset' },
      "Use the admin's",
    );
    this.resetButton.addEventListener('click', () => void this.save({ cpu: null, gpu: null }));
    const form = h(
      'form',
      { class: 'jp-ngsci-quota-form jp-ngsci-idle-form', 'aria-label': 'Choose your idle timeout' },
      h('label', {}, 'CPU sizes ', this.inputs.cpu),
      h('label', {}, 'GPU sizes ', this.inputs.gpu),
      this.saveButton,
      this.resetButton,
      this.message,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.submit();
    });
    this.node.append(
      h(
        'p',
        { class: 'jp-ngsci-hint' },
        'How long your servers may sit idle (no running cell, no activity) before they are ' +
          'stopped to save money; you get a notice with "Keep running" first. Empty: the admin\'s.',
      ),
      this.status,
      h(
        'dl',
        { class: 'jp-ngsci-facts' },
        h('dt', {}, 'CPU sizes'),
        this.figures.cpu,
        h('dt', {}, 'GPU sizes'),
        this.figures.gpu,
      ),
      form,
    );
  }

  /** Asks the service again and shows the answer. */
  async refresh(): Promise<void> {
    try {
      this.data = await this.model.api.request(
        'GET',
        '/me/idle-timeout',
        (v): v is IdleTimeout => typeof v === 'object' && v !== null && 'cpu' in v && 'gpu' in v,
      );
      this.error = null;
    } catch (err) {
      this.error =
        err instanceof NgsciApiError ? err : new NgsciApiError(0, 'bad_response', String(err));
    }
    this.render(false);
  }

  private render(fillInputs: boolean): void {
    const d = this.data;
    this.status.replaceChildren();
    if (this.error)
      this.status.append(
        notice(
          this.error.code === 'endpoint_missing' ? 'info' : 'error',
          this.error.code === 'endpoint_missing'
            ? 'Choosing your idle timeout is not available from this ngsci service yet.'
            : this.error.userMessage,
        ),
      );
    if (!d) return;
    for (const c of ['cpu', 'gpu'] as const) {
      const t = d[c];
      this.figures[c].replaceChildren(
        h('strong', { class: 'jp-ngsci-idle-applies' }, formatIdleTimeout(t.effectiveSeconds)),
        t.chosenSeconds === null ? " (the admin's)" : ' (your choice)',
        h('br'),
        h('span', { class: 'jp-ngsci-hint' }, `You may choose ${formatIdleBounds(t)}.`),
      );
      // a refresh never overwrites what someone is typing
      const input = this.inputs[c];
      if (fillInputs || (document.activeElement !== input && !input.dataset.dirty))
        input.value = t.chosenSeconds === null ? '' : idleInputValue(t.chosenSeconds);
      if (fillInputs) delete input.dataset.dirty;
      input.oninput = () => (input.dataset.dirty = '1');
      if (t.clamped && t.chosenSeconds !== null)
        this.status.append(
          notice(
            'warn',
            `Your admin narrowed the bounds for ${LABEL[c]} (${formatIdleBounds(t)}): your ` +
              `${formatIdleTimeout(t.chosenSeconds)} is outside them, so ` +
              `${formatIdleTimeout(t.effectiveSeconds)} applies.`,
          ),
        );
    }
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-mod-error', error);
  }

  private async submit(): Promise<void> {
    const d = this.data;
    const want: Partial<Record<Cls, number | null>> = {};
    try {
      for (const c of ['cpu', 'gpu'] as const) {
        const v = parseIdleInput(this.inputs[c].value);
        if (d && v !== null && !allowed(v, d[c]))
          throw new Error(
            `${v === 0 ? '"never"' : formatIdleTimeout(v)} is outside the bounds for ${LABEL[c]}: ${formatIdleBounds(d[c])}.`,
          );
        // only what changed is sent
        if (!d || v !== d[c].chosenSeconds) want[c] = v;
      }
    } catch (err) {
      this.say((err as Error).message, true);
      return;
    }
    if (!Object.keys(want).length) {
      this.say('Nothing changed.');
      return;
    }
    await this.save(want);
  }

  private async save(want: Partial<Record<Cls, number | null>>): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.saveButton.disabled = this.resetButton.disabled = true;
    try {
      this.data = await this.model.api.request(
        'PUT',
        '/me/idle-timeout',
        (v): v is IdleTimeout => typeof v === 'object' && v !== null && 'cpu' in v,
        {
          ...(want.cpu !== undefined ? { cpuSeconds: want.cpu } : {}),
          ...(want.gpu !== undefined ? { gpuSeconds: want.gpu } : {}),
        },
      );
      this.error = null;
      this.render(true);
      const d = this.data;
      this.say(
        `Saved: idle servers stop after ${formatIdleTimeout(d.cpu.effectiveSeconds)} on CPU sizes, ` +
          `${formatIdleTimeout(d.gpu.effectiveSeconds)} on GPU sizes.`,
      );
      // the budget's runway shows the idle timeout of each size
      void this.model.refresh(['billing']);
    } catch (err) {
      this.say(err instanceof NgsciApiError ? err.userMessage : String(err), true);
    } finally {
      this.busy = false;
      this.saveButton.disabled = this.resetButton.disabled = false;
    }
  }

  protected override onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    void this.refresh();
    this.start();
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.stop();
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.refresh();
      this.start();
    }
  }

  protected override onBeforeDetach(msg: Message): void {
    this.stop();
    super.onBeforeDetach(msg);
  }

  private start(): void {
    this.stop();
    const every = Math.max(5, this.refreshSeconds()) * 1000;
    this.timer = window.setInterval(() => {
      if (document.visibilityState === 'visible') void this.refresh();
    }, every);
  }

  private stop(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
  }

  override dispose(): void {
    this.stop();
    super.dispose();
  }
}
