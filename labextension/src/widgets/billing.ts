/**
 * The Billing section: plan, month-to-date spend, the budget bar with its 50/80/100 % marks,
 * when the budget runs out at the current rate, and monthly statements with CSV download.
 */
import { h, notice, row } from '../dom';
import { formatMicros, formatMonth, formatWhen, formatHours } from '../format';
import type { INgsciModel } from '../tokens';
import { BUDGET_THRESHOLDS, exhaustionAt, percentOf } from '../projection';
import { NgsciSection } from './section';

export class BillingSection extends NgsciSection {
  private mtdEl: HTMLElement | null = null;

  constructor(model: INgsciModel, refreshSeconds: () => number) {
    super(model, 'billing', { label: 'Billing', refreshSeconds });
  }

  protected render(): void {
    const m = this.model;
    const node = this.node;
    node.replaceChildren();
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
        ...row('Burning', b ? `${formatMicros(b.burnMicrosPerHour)}/h` : '—'),
      ),
    );
    if (b) {
      const scope = [...b.budgets].sort((x, y) => y.percent - x.percent)[0];
      if (scope) {
        const now = Date.now();
        const spent = m.monthToDate(now) ?? scope.spentMicros;
        const pct = percentOf(spent, scope.budgetMicros);
        const level = pct >= 100 ? 'over' : pct >= 80 ? 'high' : pct >= 50 ? 'mid' : 'low';
        const runsOut = scope.exhaustedAt
          ? Date.parse(scope.exhaustedAt)
          : exhaustionAt({
              budgetMicros: scope.budgetMicros,
              spentMicros: spent,
              burnMicrosPerHour: b.burnMicrosPerHour,
              now,
            });
        const label = `Budget${scope.kind === 'group' ? ` (group ${scope.name})` : scope.kind === 'default' ? ' (default)' : ''}: ${formatMicros(spent, { precise: false })} of ${formatMicros(scope.budgetMicros, { precise: false })}`;
        node.append(
          h(
            'div',
            { class: 'jp-ngsci-budget' },
            h(
              'div',
              { class: 'jp-ngsci-budget-label' },
              label,
              h('span', { class: 'jp-ngsci-budget-pct' }, ` ${pct}%`),
            ),
            h(
              'div',
              {
                class: `jp-ngsci-budget-bar jp-mod-${level}`,
                role: 'meter',
                'aria-valuemin': 0,
                'aria-valuemax': 100,
                'aria-valuenow': Math.min(pct, 100),
                'aria-label': label,
              },
              h('div', { class: 'jp-ngsci-budget-fill', style: `width:${Math.min(100, pct)}%` }),
              ...BUDGET_THRESHOLDS.filter((t) => t < 100).map((t) =>
                h('span', {
                  class: 'jp-ngsci-budget-mark',
                  style: `left:${t}%`,
                  title: `${t}% alert`,
                }),
              ),
            ),
            h(
              'p',
              { class: 'jp-ngsci-hint jp-ngsci-exhaustion' },
              pct >= 100
                ? scope.hardStop
                  ? 'The budget is spent: running machines stop after a grace period.'
                  : 'The budget is spent.'
                : runsOut !== null
                  ? `At the current rate the budget runs out ${formatWhen(new Date(runsOut).toISOString())}.`
                  : 'At the current rate the budget lasts the month.',
            ),
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
                h('td', {}, formatMicros(s.totalMicros, { precise: false })),
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
