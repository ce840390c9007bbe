/**
 * The admin panel's forms: a monthly budget, a plan, a plan assignment, a price override. Each
 * parses what the admin typed without floats (format.ts), says what is wrong next to its button,
 * and otherwise runs the change through the kit (which refreshes the panel and says it is done).
 */
import type { NgsciApi, Plan, Quota } from '../api';
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
              monthlyBudgetMicros: micros,
              hardStop: hard.checked,
              ...(existing
                ? {
                    maxConcurrent: existing.maxConcurrent,
                    gpuHoursPerMonth: existing.gpuHoursPerMonth,
                  }
                : {}),
            },
            existing?.id,
          ),
        `Saved: ${k === 'default' ? 'everyone' : `${k} ${who}`} ${micros === null ? 'has no budget' : `has ${formatMicros(micros, { precise: false })} a month`}.`,
      );
    },
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
