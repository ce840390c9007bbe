/**
 * The base of the sidebar's sections: renders from the model when shown, re-renders on model
 * changes only while visible, and runs a one-second tick (live cost, uptime) only while visible.
 */
import { Widget } from '@lumino/widgets';
import type { Message } from '@lumino/messaging';
import type { INgsciModel, Section } from '../tokens';

export abstract class NgsciSection extends Widget {
  private tickTimer: number | null = null;
  private refreshTimer: number | null = null;

  constructor(
    protected readonly model: INgsciModel,
    protected readonly section: Section,
    opts: { label: string; refreshSeconds: () => number; also?: Section[] },
  ) {
    super();
    this.addClass('jp-ngsci-section');
    this.addClass(`jp-ngsci-section-${section}`);
    this.title.label = opts.label;
    this.refreshSeconds = opts.refreshSeconds;
    this.sections = [section, ...(opts.also ?? [])];
    this.node.setAttribute('aria-label', opts.label);
    model.changed.connect((_, what) => {
      if (this.isVisible && (this.sections.includes(what as Section) || what === 'me'))
        this.renderKeepingFocus();
    }, this);
  }

  private readonly refreshSeconds: () => number;
  /** what this section shows: its own part of the model and any it borrows figures from */
  private readonly sections: Section[];

  /** Fills `this.node` from the model. */
  protected abstract render(): void;

  /**
   * Renders again and gives the focus back to the same control (same element kind and name) if
   * it was inside: a refresh must not throw a keyboard user out of the list they are tabbing.
   */
  protected renderKeepingFocus(): void {
    const active = document.activeElement;
    const key =
      active instanceof HTMLElement && this.node.contains(active) ? focusKey(active) : null;
    this.render();
    if (!key) return;
    const again = [...this.node.querySelectorAll<HTMLElement>(key.tag)].find(
      (el) => focusKey(el).name === key.name,
    );
    again?.focus();
  }

  /** Updates the figures that move every second; cheap. */
  protected tick(): void {}

  protected override onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    this.renderKeepingFocus();
    void this.model.refresh(this.sections);
    this.startTimers();
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.stopTimers();
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.renderKeepingFocus();
      void this.model.refresh(this.sections);
      this.startTimers();
    }
  }

  protected override onBeforeDetach(msg: Message): void {
    this.stopTimers();
    super.onBeforeDetach(msg);
  }

  private startTimers(): void {
    this.stopTimers();
    this.tickTimer = window.setInterval(() => this.tick(), 1000);
    const every = Math.max(5, this.refreshSeconds()) * 1000;
    this.refreshTimer = window.setInterval(() => {
      if (document.visibilityState === 'visible') void this.model.refresh(this.sections);
    }, every);
  }

  private stopTimers(): void {
    if (this.tickTimer !== null) window.clearInterval(this.tickTimer);
    if (this.refreshTimer !== null) window.clearInterval(this.refreshTimer);
    this.tickTimer = this.refreshTimer = null;
  }

  override dispose(): void {
    this.stopTimers();
    super.dispose();
  }
}

/** What names a control for the user: its kind and its accessible name (or its text). */
function focusKey(el: HTMLElement): { tag: string; name: string } {
  return {
    tag: el.tagName.toLowerCase(),
    name: el.getAttribute('aria-label') ?? el.getAttribute('name') ?? el.textContent ?? '',
  };
}
