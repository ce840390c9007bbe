/**
 * The Billing section: plan, month-to-date spend, the budget bar with its 50/80/100 % marks,
 * when the budget runs out at the current rate, and monthly statements with CSV download.
 */
import { h, notice, row } from '../dom';
import { formatMicros, formatMonth, formatRate, formatWhen, formatHours } from '../format';
import type { BudgetScope } from '@ngsci/contract';
import type { StatementSummary } from '../api';
import type { INgsciModel } from '../tokens';
import { BUDGET_THRESHOLDS, exhaustionAt, percentOf } from '../projection';
import { NgsciSection } from './section';

export class BillingSection extends NgsciSection {
  private mtdEl: HTMLElement | null = null;
  private budgetEls: {
    scope: BudgetScope;
    text: HTMLElement;
    pct: HTMLElement;
    fill: HTMLElement;
    bar: HTMLElement;
    hint: HTMLElement;
  } | null = null;
  private statementEls = new Map<HTMLElement, StatementSummary>();

  /** A statement's total cell; the running month's ticks (contract figures.ts statementTotal). */
  private statementCell(s: StatementSummary): HTMLElement {
    const cell = h('td', {}, formatMicros(this.model.statementTotal(s)));
    this.statementEls.set(cell, s);
    return cell;
  }

  constructor(model: INgsciModel, refreshSeconds: () => number) {
    super(model, 'billing', { label: 'Billing', refreshSeconds });
  }

  protected render(): void {
    const m = this.model;
    const node = this.node;
    node.replaceChildren();
    this.budgetEls = null;
    this.statementEls = new Map();
    const err = m.errors.billing;
    if (err && !(err.code === 'endpoint_missing' && m.budget)) {
      node.append(
        notice(
          err.code === 'endpoint_missing' ? 'info' : 'error',
          err.code === 'endpoint_missing'
            ? 'Budgets and statements are not available from this ngsci service yet.'
            : err.userMessage,
        ),
      );
    }
    const b = m.budget;
    this.mtdEl = h('span', { class: 'jp-ngsci-mtd' });
    node.append(
      h(
        'dl',
        { class: 'jp-ngsci-facts' },
        ...row(
          'Plan',
          m.me
            ? `${m.me.plan.label}${m.me.plan.multiplierPpm === 0 ? ' (free)' : m.me.plan.multiplierPpm !== 1_000_000 ? ` (×${m.me.plan.multiplierPpm / 1_000_000})` : ''}`
            : '—',
        ),
        ...row('This month', b ? this.mtdEl : '—'),
        ...row('Burning', b ? formatRate(b.burnMicrosPerHour) : '—'),
      ),
    );
    if (b) {
      const scope = [...b.budgets].sort((x, y) => y.percent - x.percent)[0];
      if (scope) {
        // the bar's text, percent, fill and hint move every second with the figure (tick)
        const v = this.budgetView(scope);
        const els = {
          scope,
          text: h('span', { class: 'jp-ngsci-budget-text' }, v.label),
          pct: h('span', { class: 'jp-ngsci-budget-pct' }, ` ${v.pct}%`),
          fill: h('div', {
            class: 'jp-ngsci-budget-fill',
            style: `width:${Math.min(100, v.pct)}%`,
          }),
          bar: h('div', {
            class: `jp-ngsci-budget-bar jp-mod-${v.level}`,
            role: 'meter',
            'aria-valuemin': 0,
            'aria-valuemax': 100,
            'aria-valuenow': Math.min(v.pct, 100),
            'aria-label': v.label,
          }),
          hint: h('p', { class: 'jp-ngsci-hint jp-ngsci-exhaustion' }, v.hint),
        };
        this.budgetEls = els;
        els.bar.append(
          els.fill,
          ...BUDGET_THRESHOLDS.filter((t) => t < 100).map((t) =>
            h('span', {
              class: 'jp-ngsci-budget-mark',
              style: `left:${t}%`,
              title: `${t}% alert`,
            }),
          ),
        );
        node.append(
          h(
            'div',
            { class: 'jp-ngsci-budget' },
            h('div', { class: 'jp-ngsci-budget-label' }, els.text, els.pct),
            els.bar,
            els.hint,
          ),
        );
      } else
        node.append(h('p', { class: 'jp-ngsci-hint' }, 'No budget applies to you this month.'));
    }
    node.append(h('h3', { class: 'jp-ngsci-subhead' }, 'Statements'));
    if (m.statements?.length) {
      node.append(
        h(
          'table',
          { class: 'jp-ngsci-table', 'aria-label': 'Statements' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Month'),
              h('th', { scope: 'col' }, 'Hours'),
              h('th', { scope: 'col' }, 'Total'),
              h('th', { scope: 'col' }, h('span', { class: 'jp-ngsci-sr' }, 'Download')),
            ),
          ),
          h(
            'tbody',
            {},
            ...m.statements.map((s) =>
              h(
                'tr',
                {},
                h('td', {}, formatMonth(s.month)),
                h('td', {}, formatHours(s.seconds)),
                this.statementCell(s),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    {
                      class: 'jp-mod-styled jp-ngsci-link',
                      type: 'button',
                      'aria-label': `Download the ${formatMonth(s.month)} statement as CSV`,
                      onclick: () => void this.download(s.month),
                    },
                    'CSV',
                  ),
                ),
              ),
            ),
          ),
        ),
      );
    } else
      node.append(h('p', { class: 'jp-ngsci-hint' }, m.statements ? 'No statements yet.' : '—'));
    this.tick();
  }

  protected override tick(): void {
    const v = this.model.monthToDate();
    if (this.mtdEl && v !== null) this.mtdEl.textContent = formatMicros(v);
    const els = this.budgetEls;
    if (els?.text.isConnected) {
      const b = this.budgetView(els.scope);
      els.text.textContent = b.label;
      els.pct.textContent = ` ${b.pct}%`;
      els.fill.style.width = `${Math.min(100, b.pct)}%`;
      els.bar.className = `jp-ngsci-budget-bar jp-mod-${b.level}`;
      els.bar.setAttribute('aria-valuenow', String(Math.min(b.pct, 100)));
      els.bar.setAttribute('aria-label', b.label);
      els.hint.textContent = b.hint;
    }
    for (const [cell, s] of this.statementEls)
      if (cell.isConnected) cell.textContent = formatMicros(this.model.statementTotal(s));
  }

  /** The budget bar's figures now: budget spent (contract figures.ts), percent, level, hint. */
  private budgetView(scope: BudgetScope) {
    const m = this.model;
    const now = m.serviceNow();
    const spent = m.budgetSpent(scope, now);
    const pct = percentOf(spent, scope.budgetMicros);
    const level = pct >= 100 ? 'over' : pct >= 80 ? 'high' : pct >= 50 ? 'mid' : 'low';
    const runsOut = scope.exhaustedAt
      ? Date.parse(scope.exhaustedAt)
      : exhaustionAt({
          budgetMicros: scope.budgetMicros,
          spentMicros: spent,
          burnMicrosPerHour: m.budget?.burnMicrosPerHour ?? 0,
          now,
        });
    const label = `Budget${scope.kind === 'group' ? ` (group ${scope.name})` : scope.kind === 'default' ? ' (default)' : ''}: ${formatMicros(spent)} of ${formatMicros(scope.budgetMicros)}`;
    const hint =
      pct >= 100
        ? scope.hardStop
          ? 'The budget is spent: running machines stop after a grace period.'
          : 'The budget is spent.'
        : runsOut !== null
          ? `At the current rate the budget runs out ${formatWhen(new Date(runsOut).toISOString())}.`
          : 'At the current rate the budget lasts the month.';
    return { spent, pct, level, label, hint };
  }

  private async download(month: string): Promise<void> {
    try {
      const blob = await this.model.api.statementCsv(month);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `ngsci-statement-${this.model.user}-${month}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      this.node.prepend(
        notice('error', (err as { userMessage?: string }).userMessage ?? String(err)),
      );
    }
  }
}
