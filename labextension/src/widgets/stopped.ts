/**
 * What covers the page once `%%ngsci stop_after` has stopped its server: what happened, when, what
 * the run cost, and a way to start the server again (the hub's spawn page). Nothing of JupyterLab
 * behind it works any more, so it replaces the page rather than asking to reconnect.
 */
import { Widget } from '@lumino/widgets';
import { h } from '../dom';
import type { StoppedText } from '../stop-after';

export class StoppedPage extends Widget {
  constructor(private readonly startAgain: string) {
    super();
    this.addClass('jp-ngsci-overlay');
    this.addClass('jp-ngsci-stopped');
    this.node.setAttribute('role', 'dialog');
    this.node.setAttribute('aria-modal', 'true');
    this.node.setAttribute('aria-label', 'This machine was stopped');
  }

  showText(text: StoppedText): void {
    this.node.replaceChildren(
      h(
        'div',
        { class: 'jp-ngsci-overlay-box' },
        h('h2', {}, 'This machine was stopped'),
        h('p', { class: 'jp-ngsci-stopped-headline', role: 'status' }, text.headline),
        h('p', { class: 'jp-ngsci-hint' }, text.detail),
        h('a', { class: 'jp-mod-styled jp-ngsci-link', href: this.startAgain }, 'Start again'),
      ),
    );
  }
}
