/** The left sidebar "ngsci": the Instance, Usage and Billing sections in one accordion. */
import { SidePanel, LabIcon } from '@jupyterlab/ui-components';
import type { Widget } from '@lumino/widgets';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<path class="jp-icon3" fill="#616161" d="M7 3h10a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H7a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v4h10V5H7zm0 6v2h10v-2H7zm0 4v4h10v-4H7zm2 1h2v2H9v-2z"/>
</svg>`;

export const ngsciIcon = new LabIcon({ name: 'ngsci:machine', svgstr: ICON_SVG });

export class NgsciSidebar extends SidePanel {
  constructor(sections: Widget[], header?: Widget) {
    super();
    this.id = 'ngsci-sidebar';
    this.addClass('jp-ngsci-sidebar');
    this.title.icon = ngsciIcon;
    this.title.caption = 'ngsci: your machine, usage and billing';
    this.node.setAttribute('aria-label', 'ngsci');
    if (header) this.header.addWidget(header);
    for (const s of sections) this.addWidget(s);
  }
}
