/**
 * The Instance section's "On spot preemption" control: the researcher's own default for what a
 * spot launch that does not choose gets when the cloud takes the machine back (relaunch
 * on-demand, relaunch spot, stop, or the organisation's default), and "Keep my variables" (at a
 * spot notice the page also saves each notebook's kernel variables, restored after the
 * relaunch). Saved at once through PUT /me/preemption; the line under it says what applies and
 * whose it is. One element kept across the section's renders (its state survives a refresh).
 */
import { NgsciApiError } from '../api';
import { h } from '../dom';
import {
  appliesText,
  changeBody,
  isPreemptionDefault,
  savedText,
  selectOptions,
  selectValue,
  type PreemptionDefault,
} from '../preemption-default';
import type { INgsciModel } from '../tokens';

/** How old an answer may be before the section's next render asks again. */
const STALE_MS = 60_000;

export class PreemptionControl {
  readonly node: HTMLElement;
  private data: PreemptionDefault | null = null;
  private fetchedAt = 0;
  private busy = false;
  private missing = false;
  private readonly select: HTMLSelectElement;
  private readonly keep: HTMLInputElement;
  private readonly applies = h('p', {
    class: 'jp-ngsci-hint jp-ngsci-preemption-applies',
    'data-testid': 'ngsci-preemption-applies',
  });
  private readonly message = h('p', { class: 'jp-ngsci-form-message', role: 'status' });

  constructor(private readonly model: INgsciModel) {
    this.select = h('select', {
      class: 'jp-mod-styled jp-ngsci-preemption-select',
      name: 'ngsci-preemption',
      'aria-label': 'On spot preemption',
    });
    this.keep = h('input', {
      type: 'checkbox',
      class: 'jp-ngsci-preemption-keep',
      name: 'ngsci-preemption-keep-state',
    });
    this.select.addEventListener('change', () => void this.save({ select: this.select.value }));
    this.keep.addEventListener('change', () => void this.save({ keepState: this.keep.checked }));
    this.fill();
    this.node = h(
      'div',
      { class: 'jp-ngsci-preemption', 'aria-label': 'Spot preemption default' },
      h('label', { class: 'jp-ngsci-preemption-label' }, 'On spot preemption ', this.select),
      h(
        'label',
        { class: 'jp-ngsci-preemption-keep-label' },
        this.keep,
        ' Keep my variables (saved at a spot notice, restored after the relaunch)',
      ),
      this.applies,
      this.message,
    );
  }

  /** Asks the service when the last answer is old (the section calls it on each render). */
  refreshIfStale(): void {
    if (this.busy || this.missing || Date.now() - this.fetchedAt < STALE_MS) return;
    void this.refresh();
  }

  async refresh(): Promise<void> {
    this.fetchedAt = Date.now();
    try {
      this.data = await this.model.api.request('GET', '/me/preemption', isPreemptionDefault);
      this.say('');
    } catch (err) {
      this.fail(err);
    }
    this.fill();
  }

  private async save(change: { select: string } | { keepState: boolean }): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.select.disabled = this.keep.disabled = true;
    try {
      this.data = await this.model.api.request(
        'PUT',
        '/me/preemption',
        isPreemptionDefault,
        changeBody(change),
      );
      this.fetchedAt = Date.now();
      this.say(savedText(this.data));
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
      this.fill();
    }
  }

  private fail(err: unknown): void {
    if (err instanceof NgsciApiError && err.code === 'endpoint_missing') {
      this.missing = true;
      this.say('Choosing a spot preemption default is not available from this ngsci service yet.');
      return;
    }
    this.say(err instanceof NgsciApiError ? err.userMessage : String(err), true);
  }

  private fill(): void {
    const d = this.data;
    const options = selectOptions(d);
    this.select.replaceChildren(...options.map((o) => h('option', { value: o.value }, o.label)));
    if (d) this.select.value = selectValue(d);
    this.keep.checked = d?.keepState ?? false;
    this.select.disabled = this.keep.disabled = this.busy || !d;
    this.applies.textContent = d ? appliesText(d) : '';
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-mod-error', error);
  }
}
