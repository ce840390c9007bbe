/**
 * What covers the page while its own server is resized or stopped: JupyterLab's own connection
 * to the server is closed (its polling would otherwise pile up OAuth redirects against a server
 * that is restarting), and the progress comes from the ngsci service, which stays reachable.
 */
import { Widget } from '@lumino/widgets';
import { h } from '../dom';
import type { ResizeProgress } from '../model';
import { resizeProgress } from '../resize-progress';
import { progressBar } from './instance';

export class RestartOverlay extends Widget {
  constructor(private readonly hubHome: string) {
    super();
    this.addClass('jp-ngsci-overlay');
    this.node.setAttribute('role', 'dialog');
    this.node.setAttribute('aria-modal', 'true');
    this.node.setAttribute('aria-label', 'Your machine is restarting');
  }

  showProgress(r: ResizeProgress): void {
    const p = resizeProgress(r);
    this.node.replaceChildren(
      h(
        'div',
        { class: 'jp-ngsci-overlay-box' },
        h(
          'h2',
          {},
          r.preempted
            ? p.failed
              ? 'The server did not start again'
              : 'The cloud took this spot machine back: starting your server again'
            : p.failed
              ? 'The resize did not work'
              : `Resizing to ${r.toSize}`,
        ),
        h('div', { role: 'status', 'aria-live': 'polite' }, progressBar(p.percent, p.text)),
        h(
          'p',
          { class: 'jp-ngsci-hint' },
          p.failed
            ? 'Your documents were saved before the machine stopped.'
            : 'Your documents were saved. This page reopens JupyterLab when the new machine is ready.',
        ),
        p.failed
          ? h('a', { class: 'jp-mod-styled jp-ngsci-link', href: this.hubHome }, 'Go to the hub')
          : null,
      ),
    );
  }
}
