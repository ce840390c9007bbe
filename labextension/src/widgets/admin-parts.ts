/**
 * The admin panel's parts, one function each: running instances (with Stop), users with spend
 * against budget, quotas and budgets, plans with who is on which, and price overrides. Each takes
 * its data and the callbacks it needs, and returns the part's section.
 */
import type {
  AdminUser,
  Instance,
  NgsciApi,
  Plan,
  PlanAssignment,
  PriceOverride,
  Quota,
} from '../api';
import { h, notice } from '../dom';
import { formatDuration, formatMicros, formatMultiplier, formatRate, formatState } from '../format';
import { costSoFar, uptimeMs } from '../projection';
import { meter, part, table, type FormKit, type Part } from './admin-kit';

export function instancesPart(
  p: Part<Instance[]>,
  now: number,
  stop: (i: Instance) => void,
  billed: (i: Instance) => number = (i) => i.billedMicros ?? costSoFar(i, now),
): HTMLElement {
  return part('Running instances', p, (list) => {
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
        // billed so far, ticked every second by the panel (contract figures.ts instanceBilled)
        h('span', { class: 'jp-ngsci-admin-cost', 'data-instance': i.id }, formatMicros(billed(i))),
        h(
          'button',
          {
            class: 'jp-mod-styled jp-mod-warn',
            type: 'button',
            'aria-label': `Stop ${i.user}/${i.server}`,
            onclick: () => stop(i),
          },
          'Stop',
        ),
      ]),
      'Running instances',
    );
  });
}

export function usersPart(
  p: Part<{ month: string; users: AdminUser[] }>,
  spent: (u: AdminUser) => number = (u) => u.spentMicros,
): HTMLElement {
  return part('Users', p, (d) =>
    table(
      ['User', 'Groups', 'Plan', 'Running', `Spent (${d.month})`, 'Budget', 'Used'],
      d.users.map((u) => [
        u.name,
        u.groups.join(', ') || '—',
        u.plan,
        String(u.running),
        // precise: a user who spent 0.4 ¢ did spend (never $0.00 for a non-zero amount)
        // spent this month, ticked every second by the panel (contract figures.ts)
        h('span', { class: 'jp-ngsci-admin-spent', 'data-user': u.name }, formatMicros(spent(u))),
        u.budgetMicros === null ? 'none' : formatMicros(u.budgetMicros, { precise: false }),
        u.percent === null ? '—' : meter(u.percent, `${u.name}: ${u.percent}% of budget`),
      ]),
      'Users',
    ),
  );
}

export function quotasPart(p: Part<Quota[]>, form: HTMLElement): HTMLElement {
  return part('Quotas and budgets', p, (qs) =>
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
      form,
    ),
  );
}

export function plansPart(
  p: Part<Plan[]>,
  assignments: Part<PlanAssignment[]>,
  kit: FormKit,
  api: NgsciApi,
  forms: { plan: HTMLElement; assign: (plans: Plan[]) => HTMLElement },
): HTMLElement {
  return part('Plans', p, (ps) =>
    h(
      'div',
      {},
      table(
        ['Plan', 'Id', 'Price multiplier', ''],
        ps.map((pl) => [
          pl.label,
          pl.id,
          formatMultiplier(pl.multiplierPpm),
          pl.builtIn
            ? h('span', { class: 'jp-ngsci-hint' }, 'Built-in: cannot be deleted')
            : h(
                'button',
                {
                  class: 'jp-mod-styled jp-mod-warn',
                  type: 'button',
                  'aria-label': `Delete plan ${pl.id}`,
                  'data-focus-key': `delete-plan-${pl.id}`,
                  onclick: () =>
                    void kit.act(
                      'plan',
                      () => api.admin.deletePlan(pl.id),
                      `Deleted plan ${pl.id}.`,
                    ),
                },
                'Delete',
              ),
        ]),
        'Plans',
      ),
      forms.plan,
      h('h3', {}, 'Who is on which plan'),
      assignments.error
        ? notice('error', assignments.error.userMessage)
        : assignments.data?.length
          ? table(
              ['For', 'Plan', ''],
              assignments.data.map((a) => [
                `${a.subjectKind} ${a.subjectName}`,
                ps.find((pl) => pl.id === a.planId)?.label ?? a.planId,
                h(
                  'button',
                  {
                    class: 'jp-mod-styled',
                    type: 'button',
                    'aria-label': `Remove the plan of ${a.subjectKind} ${a.subjectName}`,
                    'data-focus-key': `unassign-${a.id}`,
                    onclick: () =>
                      void kit.act(
                        'assign',
                        () => api.admin.unassign(a.id),
                        `${a.subjectKind} ${a.subjectName} is back on the default plan.`,
                      ),
                  },
                  'Remove',
                ),
              ]),
              'Plan assignments',
            )
          : h('p', { class: 'jp-ngsci-hint' }, 'No assignments: everyone is on the default plan.'),
      forms.assign(ps),
    ),
  );
}

export function overridesPart(
  p: Part<PriceOverride[]>,
  kit: FormKit,
  api: NgsciApi,
  form: HTMLElement,
): HTMLElement {
  return part('Price overrides', p, (os) =>
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
                    void kit.act(
                      'price',
                      () => api.admin.deletePrice(o.size, o.cloud),
                      `${o.size} on ${o.cloud} is back to the catalog price.`,
                    ),
                },
                'Remove',
              ),
            ]),
            'Price overrides',
          )
        : h('p', { class: 'jp-ngsci-hint' }, 'The catalog list prices apply: no overrides.'),
      form,
    ),
  );
}
