/**
 * The admin panel (main area), for holders of custom:ngsci:admin: every running instance with a
 * Stop button, users with spend against budget, the quota and budget editor, plans and price
 * overrides. Each part says so plainly when the service does not offer its endpoint.
 *
 * The page's token never carries the admin scope, so the panel signs in to the service on its
 * own: "Sign in as admin" opens the service's hub OAuth login in a popup, and the panel asks
 * again once the popup has closed (api.ts sends admin calls with that sign-in's cookie).
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { Message } from '@lumino/messaging';
import {
  adminAccess,
  type AdminAccess,
  type AdminUser,
  type Instance,
  type Me,
  type NgsciApi,
  type NgsciApiError,
  type Plan,
  type PlanAssignment,
  type PriceOverride,
  type Quota,
} from '../api';
import { h, notice } from '../dom';
import {
  advance,
  instanceBilled,
  monthWindow,
  type GpuWasteRanking,
  type OpenStream,
} from '@ngsci/contract';
import { formatDuration, formatMicros } from '../format';
import { uptimeMs } from '../projection';
import { isolationNotes } from '../isolation';
import { ngsciIcon } from './sidebar';
import { AdminAudit } from './admin-audit';
import { gpuWastePart } from './admin-gpu-waste';
import { empty, FormKit, load } from './admin-kit';
import { AssignForm, planForm, priceForm, quotaForms } from './admin-forms';
import { instancesPart, overridesPart, plansPart, quotasPart, usersPart } from './admin-parts';
import { creditForm, creditsApi, creditsPart, type CreditsData } from './admin-credits';

export class AdminPanel extends Widget {
  private instances = empty<Instance[]>();
  private users = empty<{
    month: string;
    users: AdminUser[];
    asOf?: string | undefined;
    streams?: OpenStream[] | undefined;
  }>();
  /** the running instances' clock and open streams: their cost ticks with them (figures.ts) */
  private instanceFigs: { asOf: string; streams: OpenStream[] } | null = null;
  /** service clock − local clock, from the newest answer's asOf */
  private offset = 0;
  private tickTimer: number | null = null;
  private quotas = empty<Quota[]>();
  private plans = empty<Plan[]>();
  private overrides = empty<PriceOverride[]>();
  private assignments = empty<PlanAssignment[]>();
  private auditSection: AdminAudit | null = null;
  private gpuWaste = empty<GpuWasteRanking>();
  private credits = empty<CreditsData>();
  private readonly creditCalls = creditsApi(this.api);
  private me = empty<Me>();
  private timer: number | null = null;
  // the forms are built once, so a refresh never wipes what an admin is typing
  private readonly kit = new FormKit(this.node, () => this.refresh());
  private readonly assignForm = new AssignForm(this.kit, this.api);
  /** the sign-in as the last refresh found it; the parts load only once it is 'ok' */
  private access: AdminAccess | null = null;
  /** while the sign-in popup is open: the timer that watches it */
  private signInWatch: number | null = null;
  private signInBlocked = false;

  constructor(private readonly api: NgsciApi) {
    super();
    this.id = 'ngsci-admin';
    this.addClass('jp-ngsci-admin');
    this.title.label = 'ngsci admin';
    this.title.icon = ngsciIcon;
    this.title.closable = true;
    this.node.tabIndex = -1;
  }

  /** Billed so far for an instance, now on the service's clock (contract figures.ts). */
  private billedOf(i: Instance): number {
    const figs = this.instanceFigs;
    if (i.billedMicros === undefined || !figs) return i.billedMicros ?? 0;
    return instanceBilled(i, figs, Date.now() + this.offset);
  }

  /** A user's spent this month, now: the answer's figure ticked with their open streams. */
  private spentOf(u: AdminUser): number {
    const d = this.users.data;
    const asOf = d?.asOf ? Date.parse(d.asOf) : NaN;
    if (
      !d?.streams ||
      !Number.isFinite(asOf) ||
      d.month !== new Date(asOf).toISOString().slice(0, 7)
    )
      return u.spentMicros;
    const now = Date.now() + this.offset;
    const w = monthWindow(asOf);
    return advance(u.spentMicros, w, d.streams, asOf, now, (s) => s.user === u.name);
  }

  /** The money cells move every second; the rest of the panel only on refresh. */
  private tick(): void {
    const cells = this.node.querySelectorAll<HTMLElement>('.jp-ngsci-admin-cost');
    for (const cell of cells) {
      const i = this.instances.data?.find((x) => x.id === cell.dataset.instance);
      if (i) cell.textContent = formatMicros(this.billedOf(i));
    }
    for (const cell of this.node.querySelectorAll<HTMLElement>('.jp-ngsci-admin-spent')) {
      const u = this.users.data?.users.find((x) => x.name === cell.dataset.user);
      if (u) cell.textContent = formatMicros(this.spentOf(u));
    }
  }

  protected override onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    if (this.tickTimer === null) this.tickTimer = window.setInterval(() => this.tick(), 1000);
    void this.refresh();
    this.timer = window.setInterval(
      () => document.visibilityState === 'visible' && void this.refresh(),
      30_000,
    );
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    if (this.timer !== null) window.clearInterval(this.timer);
    if (this.tickTimer !== null) window.clearInterval(this.tickTimer);
    this.timer = this.tickTimer = null;
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible && this.timer === null) this.onBeforeShow(msg);
  }

  override dispose(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    if (this.tickTimer !== null) window.clearInterval(this.tickTimer);
    if (this.signInWatch !== null) window.clearInterval(this.signInWatch);
    super.dispose();
  }

  async refresh(fresh = false): Promise<void> {
    this.access = await adminAccess(this.api, fresh);
    if (this.access.kind !== 'ok') {
      this.renderGate(this.access);
      return;
    }
    const audit = (this.auditSection ??= new AdminAudit(this.api)).refresh();
    const waste = load(this.api.admin.gpuWaste);
    const credits = load(() => this.creditCalls.load(new Date().toISOString().slice(0, 7)));
    [
      this.me,
      this.instances,
      this.users,
      this.quotas,
      this.plans,
      this.overrides,
      this.assignments,
    ] = await Promise.all([
      load(this.api.me),
      load(this.api.admin.instanceList).then((p) => {
        const l = p.data;
        this.instanceFigs = l?.asOf && l.streams ? { asOf: l.asOf, streams: l.streams } : null;
        if (l?.asOf) this.offset = Date.parse(l.asOf) - Date.now();
        return { data: l?.instances ?? null, error: p.error };
      }),
      load(this.api.admin.users),
      load(this.api.admin.quotas),
      load(this.api.admin.plans),
      load(this.api.admin.overrides),
      load(this.api.admin.assignments),
    ]);
    await audit;
    this.gpuWaste = await waste;
    this.credits = await credits;
    // the sign-in ran out while the panel was open: back to the sign-in button
    if (
      !fresh &&
      [this.instances, this.users, this.quotas].some((p) => p.error?.code === 'login_required')
    )
      return this.refresh(true);
    this.render();
  }

  /** The panel before the parts: sign in, a refusal, or why the service cannot say. */
  private renderGate(access: Exclude<AdminAccess, { kind: 'ok' }>): void {
    const title = h('h1', { class: 'jp-ngsci-admin-title' }, 'ngsci admin');
    if (access.kind === 'error') {
      this.node.replaceChildren(title, notice('error', access.error.userMessage));
      return;
    }
    if (access.kind === 'refused') {
      this.node.replaceChildren(
        title,
        notice(
          'error',
          `You are signed in as ${access.user}, who is not an ngsci admin: the admin panel needs the scope custom:ngsci:admin (the ngsci-admin role).`,
        ),
        h(
          'button',
          {
            class: 'jp-mod-styled',
            type: 'button',
            onclick: () => void this.api.signOut().finally(() => void this.refresh(true)),
          },
          'Sign out',
        ),
      );
      return;
    }
    const waiting = this.signInWatch !== null;
    this.node.replaceChildren(
      title,
      notice(
        'info',
        "The admin panel signs in to ngsci on its own: this page's token belongs to your server and never carries admin rights.",
      ),
      h(
        'button',
        {
          class: 'jp-mod-styled jp-mod-accept',
          type: 'button',
          onclick: () => this.startSignIn(),
        },
        'Sign in as admin',
      ),
      waiting
        ? h(
            'p',
            { class: 'jp-ngsci-hint', role: 'status' },
            'Waiting for the sign-in window to finish…',
          )
        : '',
      this.signInBlocked
        ? h(
            'p',
            { class: 'jp-ngsci-hint' },
            'The browser blocked the sign-in window. ',
            h(
              'a',
              { href: this.api.signInUrl(), target: '_blank', rel: 'opener' },
              'Open the sign-in in a new tab',
            ),
            ', then come back here.',
          )
        : '',
    );
  }

  /**
   * Opens the service's sign-in in a popup and asks the service again when the popup closes
   * (its last page closes itself), or as soon as the sign-in shows up, for ten minutes at most.
   */
  private startSignIn(): void {
    const popup = window.open(
      this.api.signInUrl(),
      'ngsci-admin-sign-in',
      'popup,width=640,height=720',
    );
    this.signInBlocked = !popup;
    if (this.signInWatch !== null) window.clearInterval(this.signInWatch);
    const started = Date.now();
    let ticks = 0;
    this.signInWatch = window.setInterval(() => {
      ticks++;
      const closed = !popup || popup.closed;
      const giveUp = Date.now() - started > 600_000;
      // a blocked popup means a tab the panel cannot watch: ask the service every 3 s instead
      if (!closed && !giveUp && ticks % 6 !== 0) return;
      void adminAccess(this.api, true).then((access) => {
        if (access.kind === 'sign-in' && !closed && !giveUp) return;
        if (this.signInWatch !== null) window.clearInterval(this.signInWatch);
        this.signInWatch = null;
        this.signInBlocked = false;
        void this.refresh(true);
      });
    }, 500);
    if (this.access && this.access.kind === 'sign-in') this.renderGate(this.access);
  }

  private render(): void {
    const active = document.activeElement;
    const keepFocus =
      active && this.node.contains(active) ? (active as HTMLElement).dataset.focusKey : undefined;
    const now = Date.now();
    const session = this.access?.kind === 'ok' ? this.access.session : null;
    this.node.replaceChildren(
      h('h1', { class: 'jp-ngsci-admin-title' }, 'ngsci admin'),
      session
        ? h(
            'p',
            { class: 'jp-ngsci-hint jp-ngsci-admin-session' },
            `Signed in as ${session.user} until ${new Date(session.expiresAt).toLocaleTimeString()}. `,
            h(
              'button',
              {
                class: 'jp-mod-styled',
                type: 'button',
                onclick: () => void this.api.signOut().finally(() => void this.refresh(true)),
              },
              'Sign out',
            ),
          )
        : '',
      ...isolationNotes(this.me.data?.localIsolation).map((n) =>
        h(
          'p',
          {
            class: `jp-ngsci-hint jp-ngsci-admin-isolation${n.level === 'warning' ? ' jp-ngsci-warning' : ''}`,
            role: n.level === 'warning' ? 'alert' : 'note',
          },
          n.text,
        ),
      ),
      instancesPart(
        this.instances,
        now,
        (i) => void this.stopInstance(i),
        (i) => this.billedOf(i),
      ),
      usersPart(this.users, (u) => this.spentOf(u)),
      gpuWastePart(this.gpuWaste),
      quotasPart(
        this.quotas,
        quotaForms(this.kit, this.api, () => this.quotas.data),
      ),
      plansPart(this.plans, this.assignments, this.kit, this.api, {
        plan: planForm(this.kit, this.api, () => this.plans.data),
        assign: (plans) => this.assignForm.render(plans),
      }),
      overridesPart(this.overrides, this.kit, this.api, priceForm(this.kit, this.api)),
      creditsPart(this.credits, this.kit, this.creditCalls, creditForm(this.kit, this.creditCalls)),
      ...(this.auditSection ? [this.auditSection.node] : []),
    );
    if (keepFocus)
      (this.node.querySelector(`[data-focus-key="${keepFocus}"]`) as HTMLElement | null)?.focus();
  }

  private async stopInstance(i: Instance): Promise<void> {
    const res = await showDialog({
      title: `Stop ${i.user}'s ${i.server}?`,
      body: `${i.size}, up ${formatDuration(uptimeMs(i, Date.now()))}. Unsaved work in it is lost.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Stop' })],
    });
    if (!res.button.accept) return;
    try {
      await this.api.admin.stop(i.user, i.server);
    } catch (err) {
      void showDialog({
        title: 'ngsci',
        body: (err as NgsciApiError).userMessage ?? String(err),
        buttons: [Dialog.okButton()],
      });
    }
    await this.refresh();
  }
}
