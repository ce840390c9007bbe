/**
 * The admin panel (main area), for holders of custom:ngsci:admin: every running instance with a
 * Stop button, users with spend against budget, the quota and budget editor, plans and price
 * overrides. Each part says so plainly when the service does not offer its endpoint.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import type { Message } from '@lumino/messaging';
import {
  NgsciApiError,
  type AdminUser,
  type Instance,
  type NgsciApi,
  type Plan,
  type PriceOverride,
  type Quota,
} from '../api';
import { h, notice } from '../dom';
import { formatDuration, formatMicros, formatRate, formatState, parseDollars } from '../format';
import { costSoFar, uptimeMs } from '../projection';
import { ngsciIcon } from './sidebar';

type Part<T> = { data: T | null; error: NgsciApiError | null };
const empty = <T>(): Part<T> => ({ data: null, error: null });

export class AdminPanel extends Widget {
  private instances = empty<Instance[]>();
  private users = empty<{ month: string; users: AdminUser[] }>();
  private quotas = empty<Quota[]>();
  private plans = empty<Plan[]>();
  private overrides = empty<PriceOverride[]>();
  private timer: number | null = null;
  private formMessage: HTMLElement | null = null;

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
    super.dispose();
  }

  async refresh(): Promise<void> {
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
    [this.instances, this.users, this.quotas, this.plans, this.overrides] = await Promise.all([
      load(this.api.admin.instances),
      load(this.api.admin.users),
      load(this.api.admin.quotas),
      load(this.api.admin.plans),
      load(this.api.admin.overrides),
    ]);
    this.render();
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
    this.node.replaceChildren(
      h('h1', { class: 'jp-ngsci-admin-title' }, 'ngsci admin'),
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
        table(
          ['Plan', 'Id', 'Price multiplier'],
          ps.map((p) => [
            p.label,
            p.id,
            p.multiplierPpm === 0 ? 'free' : `× ${p.multiplierPpm / 1_000_000}`,
          ]),
          'Plans',
        ),
      ),
      this.part('Price overrides', this.overrides, (os) =>
        os.length
          ? table(
              ['Size', 'Cloud', 'On-demand', 'Spot', 'Note'],
              os.map((o) => [
                o.size,
                o.cloud,
                formatRate(o.onDemandMicrosPerHour),
                o.spotMicrosPerHour === null ? '—' : formatRate(o.spotMicrosPerHour),
                o.note ?? '',
              ]),
              'Price overrides',
            )
          : h('p', { class: 'jp-ngsci-hint' }, 'The catalog list prices apply: no overrides.'),
      ),
    );
    if (keepFocus)
      (this.node.querySelector(`[data-focus-key="${keepFocus}"]`) as HTMLElement | null)?.focus();
  }

  private quotaForm(): HTMLElement {
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
