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
  NgsciApiError,
  type AdminAccess,
  type AdminUser,
  type Instance,
  type Me,
  type NgsciApi,
  type Plan,
  type PlanAssignment,
  type PriceOverride,
  type Quota,
} from '../api';
import { h, notice } from '../dom';
import {
  formatDuration,
  formatMicros,
  formatMultiplier,
  formatRate,
  formatState,
  parseDollars,
  parseMultiplier,
} from '../format';
import { costSoFar, uptimeMs } from '../projection';
import { ngsciIcon } from './sidebar';
import { AdminAudit } from './admin-audit';
import { isolationNotes } from '../isolation';

type Part<T> = { data: T | null; error: NgsciApiError | null };
const empty = <T>(): Part<T> => ({ data: null, error: null });

export class AdminPanel extends Widget {
  private instances = empty<Instance[]>();
  private users = empty<{ month: string; users: AdminUser[] }>();
  private quotas = empty<Quota[]>();
  private plans = empty<Plan[]>();
  private overrides = empty<PriceOverride[]>();
  private assignments = empty<PlanAssignment[]>();
  private auditSection: AdminAudit | null = null;
  private me = empty<Me>();
  private timer: number | null = null;
  private formMessage: HTMLElement | null = null;
  // the forms are built once, so a refresh never wipes what an admin is typing
  private forms: Record<string, { form: HTMLFormElement; message: HTMLElement }> = {};
  private planSelect: HTMLSelectElement | null = null;
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

  protected override onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    void this.refresh();
    this.timer = window.setInterval(
      () => document.visibilityState === 'visible' && void this.refresh(),
      30_000,
    );
  }

  protected override onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
  }

  protected override onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible && this.timer === null) this.onBeforeShow(msg);
  }

  override dispose(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    if (this.signInWatch !== null) window.clearInterval(this.signInWatch);
    super.dispose();
  }

  async refresh(fresh = false): Promise<void> {
    this.access = await adminAccess(this.api, fresh);
    if (this.access.kind !== 'ok') {
      this.renderGate(this.access);
      return;
    }
    const load = async <T>(fn: () => Promise<T>): Promise<Part<T>> => {
      try {
        return { data: await fn(), error: null };
      } catch (err) {
        return {
          data: null,
          error:
            err instanceof NgsciApiError ? err : new NgsciApiError(0, 'bad_response', String(err)),
        };
      }
    };
    const audit = (this.auditSection ??= new AdminAudit(this.api)).refresh();
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
      load(this.api.admin.instances),
      load(this.api.admin.users),
      load(this.api.admin.quotas),
      load(this.api.admin.plans),
      load(this.api.admin.overrides),
      load(this.api.admin.assignments),
    ]);
    await audit;
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

  private part<T>(title: string, p: Part<T>, body: (d: T) => HTMLElement): HTMLElement {
    const content = p.error
      ? notice(
          p.error.code === 'endpoint_missing' ? 'info' : 'error',
          p.error.code === 'endpoint_missing'
            ? `${title}: not available from this ngsci service yet.`
            : p.error.userMessage,
        )
      : p.data !== null
        ? body(p.data)
        : notice('info', 'Loading…');
    return h(
      'section',
      { class: 'jp-ngsci-admin-part', 'aria-label': title },
      h('h2', {}, title),
      content,
    );
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
      this.part('Running instances', this.instances, (list) => {
        const running = list.filter((i) => i.state !== 'stopped' && i.state !== 'failed');
        if (!running.length) return h('p', { class: 'jp-ngsci-hint' }, 'Nothing is running.');
        return table(
          ['User', 'Server', 'Size', 'State', 'Uptime', 'Rate', 'Cost', ''],
          running.map((i) => [
            i.user,
            i.server,
            i.size,
            formatState(i.state),
            formatDuration(uptimeMs(i, now)),
            formatRate(i.ratePerHourMicros),
            formatMicros(costSoFar(i, now)),
            h(
              'button',
              {
                class: 'jp-mod-styled jp-mod-warn',
                type: 'button',
                'aria-label': `Stop ${i.user}/${i.server}`,
                onclick: () => void this.stopInstance(i),
              },
              'Stop',
            ),
          ]),
          'Running instances',
        );
      }),
      this.part('Users', this.users, (d) =>
        table(
          ['User', 'Groups', 'Plan', 'Running', `Spent (${d.month})`, 'Budget', 'Used'],
          d.users.map((u) => [
            u.name,
            u.groups.join(', ') || '—',
            u.plan,
            String(u.running),
            formatMicros(u.spentMicros, { precise: false }),
            u.budgetMicros === null ? 'none' : formatMicros(u.budgetMicros, { precise: false }),
            u.percent === null ? '—' : meter(u.percent, `${u.name}: ${u.percent}% of budget`),
          ]),
          'Users',
        ),
      ),
      this.part('Quotas and budgets', this.quotas, (qs) =>
        h(
          'div',
          {},
          qs.length
            ? table(
                ['For', 'Monthly budget', 'Hard stop', 'Max running', 'GPU h/month'],
                qs.map((q) => [
                  q.subjectKind === 'default'
                    ? 'everyone (default)'
                    : `${q.subjectKind} ${q.subjectName}`,
                  q.monthlyBudgetMicros === null
                    ? 'none'
                    : formatMicros(q.monthlyBudgetMicros, { precise: false }),
                  q.hardStop ? 'yes' : 'no',
                  q.maxConcurrent === null ? '—' : String(q.maxConcurrent),
                  q.gpuHoursPerMonth === null ? '—' : String(q.gpuHoursPerMonth),
                ]),
                'Quotas',
              )
            : h('p', { class: 'jp-ngsci-hint' }, 'No quotas set.'),
          this.quotaForm(),
        ),
      ),
      this.part('Plans', this.plans, (ps) =>
        h(
          'div',
          {},
          table(
            ['Plan', 'Id', 'Price multiplier', ''],
            ps.map((p) => [
              p.label,
              p.id,
              formatMultiplier(p.multiplierPpm),
              p.builtIn
                ? h('span', { class: 'jp-ngsci-hint' }, 'Built-in: cannot be deleted')
                : h(
                    'button',
                    {
                      class: 'jp-mod-styled jp-mod-warn',
                      type: 'button',
                      'aria-label': `Delete plan ${p.id}`,
                      'data-focus-key': `delete-plan-${p.id}`,
                      onclick: () =>
                        void this.act(
                          'plan',
                          () => this.api.admin.deletePlan(p.id),
                          `Deleted plan ${p.id}.`,
                        ),
                    },
                    'Delete',
                  ),
            ]),
            'Plans',
          ),
          this.planForm(),
          h('h3', {}, 'Who is on which plan'),
          this.assignments.error
            ? notice('error', this.assignments.error.userMessage)
            : this.assignments.data?.length
              ? table(
                  ['For', 'Plan', ''],
                  this.assignments.data.map((a) => [
                    `${a.subjectKind} ${a.subjectName}`,
                    ps.find((p) => p.id === a.planId)?.label ?? a.planId,
                    h(
                      'button',
                      {
                        class: 'jp-mod-styled',
                        type: 'button',
                        'aria-label': `Remove the plan of ${a.subjectKind} ${a.subjectName}`,
                        'data-focus-key': `unassign-${a.id}`,
                        onclick: () =>
                          void this.act(
                            'assign',
                            () => this.api.admin.unassign(a.id),
                            `${a.subjectKind} ${a.subjectName} is back on the default plan.`,
                          ),
                      },
                      'Remove',
                    ),
                  ]),
                  'Plan assignments',
                )
              : h(
                  'p',
                  { class: 'jp-ngsci-hint' },
                  'No assignments: everyone is on the default plan.',
                ),
          this.assignForm(ps),
        ),
      ),
      this.part('Price overrides', this.overrides, (os) =>
        h(
          'div',
          {},
          os.length
            ? table(
                ['Size', 'Cloud', 'On-demand', 'Spot', 'Note', ''],
                os.map((o) => [
                  o.size,
                  o.cloud,
                  formatRate(o.onDemandMicrosPerHour),
                  o.spotMicrosPerHour === null ? '—' : formatRate(o.spotMicrosPerHour),
                  o.note ?? '',
                  h(
                    'button',
                    {
                      class: 'jp-mod-styled',
                      type: 'button',
                      'aria-label': `Remove the price override for ${o.size} on ${o.cloud}`,
                      'data-focus-key': `price-${o.size}-${o.cloud}`,
                      onclick: () =>
                        void this.act(
                          'price',
                          () => this.api.admin.deletePrice(o.size, o.cloud),
                          `${o.size} on ${o.cloud} is back to the catalog price.`,
                        ),
                    },
                    'Remove',
                  ),
                ]),
                'Price overrides',
              )
            : h('p', { class: 'jp-ngsci-hint' }, 'The catalog list prices apply: no overrides.'),
          this.priceForm(),
        ),
      ),
      ...(this.auditSection ? [this.auditSection.node] : []),
    );
    if (keepFocus)
      (this.node.querySelector(`[data-focus-key="${keepFocus}"]`) as HTMLElement | null)?.focus();
  }

  /** A form built once and kept, with its message line (role=status) next to its button. */
  private keptForm(
    key: string,
    title: string,
    fields: HTMLElement[],
    submit: string,
    onSubmit: (say: (text: string, error?: boolean) => void) => Promise<void>,
  ): HTMLFormElement {
    const kept = this.forms[key];
    if (kept) return kept.form;
    const message = h('p', { class: 'jp-ngsci-form-message', role: 'status' });
    const form = h(
      'form',
      { class: 'jp-ngsci-quota-form', 'aria-label': title },
      h('h3', {}, title),
      ...fields,
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, submit),
      message,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void onSubmit(this.sayer(key));
    });
    this.forms[key] = { form, message };
    return form;
  }

  private sayer(key: string): (text: string, error?: boolean) => void {
    return (text, error = false) => {
      const m = this.forms[key]?.message;
      if (!m) return;
      m.textContent = text;
      m.classList.toggle('jp-mod-error', error);
    };
  }

  /** Runs one admin change, refreshes, and says how it went next to form `key`. */
  private async act(key: string, fn: () => Promise<unknown>, done: string): Promise<void> {
    const say = this.sayer(key);
    try {
      await fn();
    } catch (err) {
      say(err instanceof NgsciApiError ? err.userMessage : String(err), true);
      return;
    }
    await this.refresh();
    say(done);
    // a Remove or Delete button pressed from the keyboard is gone now: keep focus in the panel,
    // on the form whose message says what happened
    if (!this.node.contains(document.activeElement))
      this.forms[key]?.form.querySelector<HTMLElement>('input, select')?.focus();
  }

  private planForm(): HTMLElement {
    const field = (name: string, placeholder: string) =>
      h('input', { name, type: 'text', placeholder, autocomplete: 'off', 'data-focus-key': name });
    const id = field('planId', 'academic');
    const label = field('planLabel', 'Academic partners');
    const multiplier = field('planMultiplier', '80% or ×0.8');
    return this.keptForm(
      'plan',
      'Create or change a plan',
      [
        h('label', {}, 'Id ', id),
        h('label', {}, 'Label ', label),
        h('label', {}, 'Price multiplier (percent of list price, or a factor) ', multiplier),
      ],
      'Save plan',
      async (say) => {
        let ppm: number;
        const planId = id.value.trim();
        try {
          if (!planId) throw new Error('give the plan an id (lower-case letters, digits, dashes)');
          if (!label.value.trim()) throw new Error('give the plan a label');
          ppm = parseMultiplier(multiplier.value);
        } catch (err) {
          say((err as Error).message, true);
          return;
        }
        const exists = this.plans.data?.some((p) => p.id === planId);
        const body = { label: label.value.trim(), multiplierPpm: ppm };
        await this.act(
          'plan',
          () =>
            exists
              ? this.api.admin.updatePlan(planId, body)
              : this.api.admin.createPlan({ id: planId, ...body }),
          `${exists ? 'Changed' : 'Created'} plan ${planId}: ${formatMultiplier(ppm)} of the list price.`,
        );
      },
    );
  }

  private assignForm(plans: Plan[]): HTMLElement {
    if (!this.planSelect)
      this.planSelect = h('select', { name: 'assignPlan', 'data-focus-key': 'assignPlan' });
    const select = this.planSelect;
    const chosen = select.value;
    select.replaceChildren(
      ...plans.map((p) => h('option', { value: p.id }, `${p.label} (${p.id})`)),
    );
    if (plans.some((p) => p.id === chosen)) select.value = chosen;
    const existing = this.forms.assign;
    if (existing) return existing.form;
    const kind = h(
      'select',
      { name: 'assignKind', 'data-focus-key': 'assignKind' },
      h('option', { value: 'user' }, 'User'),
      h('option', { value: 'group' }, 'Group'),
    );
    const name = h('input', {
      name: 'assignName',
      type: 'text',
      placeholder: 'researcher',
      autocomplete: 'off',
      'data-focus-key': 'assignName',
    });
    return this.keptForm(
      'assign',
      'Assign a plan',
      [
        h('label', {}, 'For ', kind),
        h('label', {}, 'Name ', name),
        h('label', {}, 'Plan ', select),
      ],
      'Assign plan',
      async (say) => {
        const who = name.value.trim();
        if (!who) {
          say(`name the ${kind.value} the plan is for`, true);
          return;
        }
        const k = kind.value as 'user' | 'group';
        await this.act(
          'assign',
          () => this.api.admin.assign({ subjectKind: k, subjectName: who, planId: select.value }),
          `${k} ${who} is on plan ${select.value}.`,
        );
      },
    );
  }

  private priceForm(): HTMLElement {
    if (this.forms.price) return this.forms.price.form;
    const field = (name: string, placeholder: string, mode?: string) =>
      h('input', {
        name,
        type: 'text',
        placeholder,
        autocomplete: 'off',
        inputmode: mode,
        'data-focus-key': name,
      });
    const size = field('priceSize', 'cpu-small');
    const cloud = h(
      'select',
      { name: 'priceCloud', 'data-focus-key': 'priceCloud' },
      ...['local', 'aws', 'gcp', 'azure'].map((c) => h('option', { value: c }, c)),
    );
    const onDemand = field('priceOnDemand', '0.50', 'decimal');
    const spot = field('priceSpot', '0.15', 'decimal');
    const note = field('priceNote', 'negotiated rate');
    return this.keptForm(
      'price',
      'Set a price override',
      [
        h('label', {}, 'Size ', size),
        h('label', {}, 'Cloud ', cloud),
        h('label', {}, 'On-demand (USD/hour) ', onDemand),
        h('label', {}, 'Spot (USD/hour, empty for none) ', spot),
        h('label', {}, 'Note ', note),
      ],
      'Save price',
      async (say) => {
        let od: number;
        let sp: number | null = null;
        const sz = size.value.trim();
        try {
          if (!sz) throw new Error('name the size the price is for');
          od = parseDollars(onDemand.value);
          if (spot.value.trim()) sp = parseDollars(spot.value);
        } catch (err) {
          say((err as Error).message, true);
          return;
        }
        await this.act(
          'price',
          () =>
            this.api.admin.putPrice({
              size: sz,
              cloud: cloud.value,
              onDemandMicrosPerHour: od,
              spotMicrosPerHour: sp,
              ...(note.value.trim() ? { note: note.value.trim() } : {}),
            }),
          `${sz} on ${cloud.value} costs ${formatRate(od)}${sp === null ? '' : ` (spot ${formatRate(sp)})`}.`,
        );
      },
    );
  }

  private quotaFormEl: HTMLElement | null = null;

  private quotaForm(): HTMLElement {
    if (this.quotaFormEl) return this.quotaFormEl;
    const kind = h(
      'select',
      { name: 'subjectKind', 'data-focus-key': 'kind' },
      h('option', { value: 'user' }, 'User'),
      h('option', { value: 'group' }, 'Group'),
      h('option', { value: 'default' }, 'Everyone (default)'),
    );
    const name = h('input', {
      name: 'subjectName',
      type: 'text',
      placeholder: 'researcher',
      'data-focus-key': 'name',
      autocomplete: 'off',
    });
    const budget = h('input', {
      name: 'monthlyBudget',
      type: 'text',
      inputmode: 'decimal',
      placeholder: '250.00',
      'data-focus-key': 'budget',
    });
    const hard = h('input', { name: 'hardStop', type: 'checkbox', 'data-focus-key': 'hard' });
    this.formMessage = h('p', { class: 'jp-ngsci-form-message', role: 'status' });
    kind.addEventListener('change', () => {
      name.disabled = kind.value === 'default';
    });
    const form = h(
      'form',
      { class: 'jp-ngsci-quota-form', 'aria-label': 'Set a monthly budget' },
      h('h3', {}, 'Set a monthly budget'),
      h('label', {}, 'For ', kind),
      h('label', {}, 'Name ', name),
      h('label', {}, 'Budget (USD/month, empty for none) ', budget),
      h('label', { class: 'jp-ngsci-check' }, hard, ' Stop machines when it is spent'),
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, 'Save budget'),
      this.formMessage,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.saveQuota(
        kind.value as 'user' | 'group' | 'default',
        name.value.trim(),
        budget.value,
        hard.checked,
      );
    });
    this.quotaFormEl = form;
    return form;
  }

  private async saveQuota(
    kind: 'user' | 'group' | 'default',
    name: string,
    budgetText: string,
    hardStop: boolean,
  ): Promise<void> {
    const say = (text: string, error = false) => {
      if (!this.formMessage) return;
      this.formMessage.textContent = text;
      this.formMessage.classList.toggle('jp-mod-error', error);
    };
    let micros: number | null = null;
    try {
      if (kind !== 'default' && !name) throw new Error(`name the ${kind} the budget is for`);
      if (budgetText.trim()) micros = parseDollars(budgetText);
    } catch (err) {
      say((err as Error).message, true);
      return;
    }
    const existing = this.quotas.data?.find(
      (q) => q.subjectKind === kind && q.subjectName === (kind === 'default' ? '' : name),
    );
    try {
      await this.api.admin.putQuota(
        {
          subjectKind: kind,
          subjectName: kind === 'default' ? '' : name,
          monthlyBudgetMicros: micros,
          hardStop,
          ...(existing
            ? { maxConcurrent: existing.maxConcurrent, gpuHoursPerMonth: existing.gpuHoursPerMonth }
            : {}),
        },
        existing?.id,
      );
      await this.refresh();
      say(
        `Saved: ${kind === 'default' ? 'everyone' : `${kind} ${name}`} ${micros === null ? 'has no budget' : `has ${formatMicros(micros, { precise: false })} a month`}.`,
      );
    } catch (err) {
      say((err as NgsciApiError).userMessage ?? String(err), true);
    }
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

function table(head: string[], rows: (string | HTMLElement)[][], label: string): HTMLElement {
  return h(
    'table',
    { class: 'jp-ngsci-table', 'aria-label': label },
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

function meter(percent: number, label: string): HTMLElement {
  const level = percent >= 100 ? 'over' : percent >= 80 ? 'high' : percent >= 50 ? 'mid' : 'low';
  return h(
    'div',
    {
      class: `jp-ngsci-budget-bar jp-ngsci-budget-bar-small jp-mod-${level}`,
      role: 'meter',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.min(100, percent),
      'aria-label': label,
      title: `${percent}%`,
    },
    h('div', { class: 'jp-ngsci-budget-fill', style: `width:${Math.min(100, percent)}%` }),
  );
}
