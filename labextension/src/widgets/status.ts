/**
 * The status bar item: "$ spent today · size · uptime". It ticks every second from the model's
 * last figures and asks the service again only every few minutes while the page is visible.
 */
import { Widget } from '@lumino/widgets';
import { formatDuration, formatMicros } from '../format';
import type { INgsciModel } from '../tokens';
import { uptimeMs } from '../projection';
import { stopCountdown } from '../countdown';

export class NgsciStatus extends Widget {
  private timer: number;
  private poll: number;

  constructor(
    private readonly model: INgsciModel,
    private readonly open: () => void,
    refreshSeconds: number,
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-ngsci-status');
    this.node.setAttribute('type', 'button');
    this.node.setAttribute('title', 'ngsci: open the sidebar');
    this.node.addEventListener('click', () => this.open());
    this.timer = window.setInterval(() => this.update(), 1000);
    this.poll = window.setInterval(
      () => {
        if (document.visibilityState === 'visible')
          void model.refresh(['instance', 'usage', 'billing']);
      },
      Math.max(30, refreshSeconds) * 1000,
    );
    model.changed.connect(() => this.update(), this);
  }

  protected override onUpdateRequest(): void {
    const inst = this.model.current;
    if (!inst && this.model.errors.instance) {
      this.node.textContent = 'ngsci: unavailable';
      return;
    }
    const parts = [`${formatMicros(this.model.spentToday())} today`];
    if (inst) {
      parts.push(inst.size);
      parts.push(
        inst.state === 'running'
          ? formatDuration(uptimeMs(inst, this.model.serviceNow()))
          : inst.state,
      );
    }
    // a spent hard-stop budget: the countdown to the stop (countdown.ts)
    const stop = stopCountdown(this.model.budget, this.model.serviceNow());
    if (stop) parts.push(stop.text);
    this.node.classList.toggle('jp-ngsci-status-stopping', !!stop);
    this.node.textContent = parts.join(' · ');
    this.node.setAttribute('aria-label', `ngsci: ${parts.join(', ')}. Open the ngsci sidebar.`);
  }

  override dispose(): void {
    window.clearInterval(this.timer);
    window.clearInterval(this.poll);
    super.dispose();
  }
}
