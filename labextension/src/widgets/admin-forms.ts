/**
 * The admin panel's forms: a monthly budget, the bounds of researchers' own idle timeouts, a
 * plan, a plan assignment, a price override. Each
 * parses what the admin typed without floats (format.ts), says what is wrong next to its button,
 * and otherwise runs the change through the kit (which refreshes the panel and says it is done).
 */
import type { NgsciApi, Plan, Quota, QuotaInput } from '../api';
import { formatIdleTimeout } from '@ngsci/contract';
import { h } from '../dom';
import {
  formatMicros,
  formatMultiplier,
  formatRate,
  parseDollars,
  parseMultiplier,
} from '../format';
import type { FormKit } from './admin-kit';

export function budgetForm(kit: FormKit, api: NgsciApi, quotas: () => Quota[] | null): HTMLElement {
  const kept = kit.has('quota');
  if (kept) return kept;
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
  kind.addEventListener('change', () => {
    name.disabled = kind.value === 'default';
  });
  return kit.keptForm(
    'quota',
    'Set a monthly budget',
    [
      h('label', {}, 'For ', kind),
      h('label', {}, 'Name ', name),
      h('label', {}, 'Budget (USD/month, empty for none) ', budget),
      h('label', { class: 'jp-ngsci-check' }, hard, ' Stop machines when it is spent'),
    ],
    'Save budget',
    async (say) => {
      const k = kind.value as 'user' | 'group' | 'default';
      const who = name.value.trim();
      let micros: number | null = null;
      try {
        if (k !== 'default' && !who) throw new Error(`name the ${k} the budget is for`);
        if (budget.value.trim()) micros = parseDollars(budget.value);
      } catch (err) {
        say((err as Error).message, true);
        return;
      }
      const subjectName = k === 'default' ? '' : who;
      const existing = quotas()?.find((q) => q.subjectKind === k && q.subjectName === subjectName);
      await kit.act(
        'quota',
        () =>
          api.admin.putQuota(
            {
              subjectKind: k,
              subjectName,
              // PUT replaces the row: the row's other limits stay as they are
              ...(existing ? keptLimits(existing) : {}),
              monthlyBudgetMicros: micros,
              hardStop: hard.checked,
            },
            existing?.id,
          ),
        `Saved: ${k === 'default' ? 'everyone' : `${k} ${who}`} ${micros === null ? 'has no budget' : `has ${formatMicros(micros, { precise: false })} a month`}.`,
      );
    },
  );
}

/** A quota row's limits as an input, so a form that changes some of them keeps the rest. */
function keptLimits(q: Quota): Partial<QuotaInput> {
  return {
    monthlyBudgetMicros: q.monthlyBudgetMicros,
    hardStop: q.hardStop,
    maxConcurrent: q.maxConcurrent,
    allowedSizes: q.allowedSizes,
    gpuHoursPerMonth: q.gpuHoursPerMonth,
    idleTimeoutCpuSeconds: q.idleTimeoutCpuSeconds,
    idleTimeoutGpuSeconds: q.idleTimeoutGpuSeconds,
    idleTimeoutCpuMinSeconds: q.idleTimeoutCpuMinSeconds ?? null,
    idleTimeoutCpuMaxSeconds: q.idleTimeoutCpuMaxSeconds ?? null,
    idleTimeoutGpuMinSeconds: q.idleTimeoutGpuMinSeconds ?? null,
    idleTimeoutGpuMaxSeconds: q.idleTimeoutGpuMaxSeconds ?? null,
    maxAgeSeconds: q.maxAgeSeconds,
  };
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A bound as an admin types it: `10m`, `4h`, `1h30m`, `90s`, a bare number of minutes; `never`
 * (only `never` for a maximum: no upper bound, 0); empty: not set (null).
 */
export function parseBound(text: string, what: string, max: boolean): number | null {
  const s = text.trim().toLowerCase().replace(/\s+/g, '');
  if (!s) return null;
  if (s === 'never') {
    if (max) return 0;
    throw new Error(`${what}: "never" only makes sense as a maximum`);
  }
  if (/^\d+$/.test(s) && Number(s) > 0) return Number(s) * 60;
  if (!/^(\d+[smhd])+$/.test(s))
    throw new Error(`${what}: "${text.trim()}" is not a duration such as 10m, 4h or 1h30m`);
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhd])/g)) total += Number(n) * DURATION_UNITS[u!]!;
  if (total <= 0) throw new Error(`${what} must be longer than 0 s`);
  if (total > 31 * 86400) throw new Error(`${what} must be at most 31 days`);
  return total;
}

/** `10 min to 4 h`, `from 10 min`, `up to never`: one class's bounds on a quota row. */
export function boundsText(min?: number | null, max?: number | null): string {
  if (min == null && max == null) return 'not set';
  const hi = max == null ? null : max === 0 ? 'no limit' : formatIdleTimeout(max);
  if (min == null) return `up to ${hi}`;
  if (hi === null) return `from ${formatIdleTimeout(min)}`;
  return `${formatIdleTimeout(min)} to ${hi}`;
}

/**
 * The bounds researchers choose their own idle timeout within (sidebar, `%ngsci idle`, `ngsci
 * idle`), per size class, for a user, a group or everyone; with the rows that set any listed.
 */
export function idleBoundsForm(
  kit: FormKit,
  api: NgsciApi,
  quotas: () => Quota[] | null,
): HTMLElement {
  const kept = kit.has('idle-bounds');
  if (kept) return kept;
  const kind = h(
    'select',
    { name: 'idleSubjectKind', 'data-focus-key': 'idleKind' },
    h('option', { value: 'default' }, 'Everyone (default)'),
    h('option', { value: 'group' }, 'Group'),
    h('option', { value: 'user' }, 'User'),
  );
  const name = h('input', {
    name: 'idleSubjectName',
    type: 'text',
    placeholder: 'researcher',
    'data-focus-key': 'idleName',
    autocomplete: 'off',
    disabled: true,
  });
  kind.addEventListener('change', () => {
    name.disabled = kind.value === 'default';
  });
  const field = (key: string, placeholder: string) =>
    h('input', {
      name: key,
      type: 'text',
      placeholder,
      autocomplete: 'off',
      size: 7,
      'data-focus-key': key,
    });
  const cpuMin = field('idleCpuMin', '10m');
  const cpuMax = field('idleCpuMax', '4h');
  const gpuMin = field('idleGpuMin', '5m');
  const gpuMax = field('idleGpuMax', '1h');
  return kit.keptForm(
    'idle-bounds',
    "Researchers' own idle timeout: bounds",
    [
      h('label', {}, 'For ', kind),
      h('label', {}, 'Name ', name),
      h('label', {}, 'CPU from ', cpuMin),
      h('label', {}, 'to ', cpuMax),
      h('label', {}, 'GPU from ', gpuMin),
      h('label', {}, 'to ', gpuMax),
      h(
        'p',
        { class: 'jp-ngsci-hint jp-ngsci-form-message' },
        'Durations such as 10m or 4h; a maximum of "never" lets researchers turn culling off; ' +
          "empty: not set (then from 60 s up to the admin's idle timeout). Narrowing the bounds " +
          'later moves choices outside them to the nearest bound.',
      ),
    ],
    'Save bounds',
    async (say) => {
      const k = kind.value as 'user' | 'group' | 'default';
      const who = name.value.trim();
      let b: Pick<
        QuotaInput,
        | 'idleTimeoutCpuMinSeconds'
        | 'idleTimeoutCpuMaxSeconds'
        | 'idleTimeoutGpuMinSeconds'
        | 'idleTimeoutGpuMaxSeconds'
      >;
      try {
        if (k !== 'default' && !who) throw new Error(`name the ${k} the bounds are for`);
        b = {
          idleTimeoutCpuMinSeconds: parseBound(cpuMin.value, 'CPU minimum', false),
          idleTimeoutCpuMaxSeconds: parseBound(cpuMax.value, 'CPU maximum', true),
          idleTimeoutGpuMinSeconds: parseBound(gpuMin.value, 'GPU minimum', false),
          idleTimeoutGpuMaxSeconds: parseBound(gpuMax.value, 'GPU maximum', true),
        };
        for (const [lo, hi, c] of [
          [b.idleTimeoutCpuMinSeconds, b.idleTimeoutCpuMaxSeconds, 'CPU'],
          [b.idleTimeoutGpuMinSeconds, b.idleTimeoutGpuMaxSeconds, 'GPU'],
        ] as const)
          if (lo != null && hi != null && hi !== 0 && lo > hi)
            throw new Error(`the ${c} minimum is above its maximum`);
      } catch (err) {
        say((err as Error).message, true);
        return;
      }
      const subjectName = k === 'default' ? '' : who;
      const existing = quotas()?.find((q) => q.subjectKind === k && q.subjectName === subjectName);
      await kit.act(
        'idle-bounds',
        () =>
          api.admin.putQuota(
            { subjectKind: k, subjectName, ...(existing ? keptLimits(existing) : {}), ...b },
            existing?.id,
          ),
        `Saved: ${k === 'default' ? 'everyone' : `${k} ${who}`} may choose ${boundsText(b.idleTimeoutCpuMinSeconds, b.idleTimeoutCpuMaxSeconds)} on CPU sizes, ${boundsText(b.idleTimeoutGpuMinSeconds, b.idleTimeoutGpuMaxSeconds)} on GPU sizes.`,
      );
    },
  );
}

/** The quota forms of the panel's "Quotas and budgets" part, with the rows that set idle bounds. */
export function quotaForms(kit: FormKit, api: NgsciApi, quotas: () => Quota[] | null): HTMLElement {
  const bounded = (quotas() ?? []).filter(
    (q) =>
      q.idleTimeoutCpuMinSeconds != null ||
      q.idleTimeoutCpuMaxSeconds != null ||
      q.idleTimeoutGpuMinSeconds != null ||
      q.idleTimeoutGpuMaxSeconds != null,
  );
  return h(
    'div',
    { class: 'jp-ngsci-quota-forms' },
    budgetForm(kit, api, quotas),
    bounded.length
      ? h(
          'table',
          { class: 'jp-ngsci-table', 'aria-label': 'Idle timeout bounds' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['For', 'CPU: researchers may choose', 'GPU: researchers may choose'].map((c) =>
                h('th', { scope: 'col' }, c),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            ...bounded.map((q) =>
              h(
                'tr',
                {},
                h(
                  'td',
                  {},
                  q.subjectKind === 'default'
                    ? 'everyone (default)'
                    : `${q.subjectKind} ${q.subjectName}`,
                ),
                h('td', {}, boundsText(q.idleTimeoutCpuMinSeconds, q.idleTimeoutCpuMaxSeconds)),
                h('td', {}, boundsText(q.idleTimeoutGpuMinSeconds, q.idleTimeoutGpuMaxSeconds)),
              ),
            ),
          ),
        )
      : null,
    idleBoundsForm(kit, api, quotas),
  );
}

export function planForm(kit: FormKit, api: NgsciApi, plans: () => Plan[] | null): HTMLElement {
  const kept = kit.has('plan');
  if (kept) return kept;
  const field = (name: string, placeholder: string) =>
    h('input', { name, type: 'text', placeholder, autocomplete: 'off', 'data-focus-key': name });
  const id = field('planId', 'academic');
  const label = field('planLabel', 'Academic partners');
  const multiplier = field('planMultiplier', '80% or ×0.8');
  return kit.keptForm(
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
      const exists = plans()?.some((p) => p.id === planId);
      const body = { label: label.value.trim(), multiplierPpm: ppm };
      await kit.act(
        'plan',
        () =>
          exists
            ? api.admin.updatePlan(planId, body)
            : api.admin.createPlan({ id: planId, ...body }),
        `${exists ? 'Changed' : 'Created'} plan ${planId}: ${formatMultiplier(ppm)} of the list price.`,
      );
    },
  );
}

/** The plan assignment form; its plan list follows the plans on every render. */
export class AssignForm {
  private readonly select = h('select', { name: 'assignPlan', 'data-focus-key': 'assignPlan' });

  constructor(
    private readonly kit: FormKit,
    private readonly api: NgsciApi,
  ) {}

  render(plans: Plan[]): HTMLElement {
    const select = this.select;
    const chosen = select.value;
    select.replaceChildren(
      ...plans.map((p) => h('option', { value: p.id }, `${p.label} (${p.id})`)),
    );
    if (plans.some((p) => p.id === chosen)) select.value = chosen;
    const kept = this.kit.has('assign');
    if (kept) return kept;
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
    return this.kit.keptForm(
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
        await this.kit.act(
          'assign',
          () => this.api.admin.assign({ subjectKind: k, subjectName: who, planId: select.value }),
          `${k} ${who} is on plan ${select.value}.`,
        );
      },
    );
  }
}

export function priceForm(kit: FormKit, api: NgsciApi): HTMLElement {
  const kept = kit.has('price');
  if (kept) return kept;
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
  return kit.keptForm(
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
      await kit.act(
        'price',
        () =>
          api.admin.putPrice({
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
