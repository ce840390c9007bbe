/**
 * The admin panel's Cloud credits section: every grant with what usage has drawn from it and
 * what is left, the alerts (a grant that runs out or expires unused soon), this month's list cost,
 * credits applied and net cost per cloud, a form to record a grant and a Remove button per grant.
 * Its calls go through the one seam (api.ts) with the admin sign-in.
 */
import type {
  CreditGrant,
  CreditGrantList,
  CreditSettings,
  CreditStatement,
} from '@ngsci/contract';
import type { NgsciApi } from '../api';
import { h } from '../dom';
import { formatMicros, parseDollars } from '../format';
import { part, table, type FormKit, type Part } from './admin-kit';

export interface CreditsData {
  list: CreditGrantList;
  statement: CreditStatement;
}

const isList = (v: unknown): v is CreditGrantList =>
  typeof v === 'object' && v !== null && Array.isArray((v as CreditGrantList).grants);
const isStatement = (v: unknown): v is CreditStatement =>
  typeof v === 'object' && v !== null && Array.isArray((v as CreditStatement).clouds);
const isGrant = (v: unknown): v is CreditGrant =>
  typeof v === 'object' && v !== null && 'id' in v && 'amountMicros' in v;
const isSettings = (v: unknown): v is CreditSettings =>
  typeof v === 'object' && v !== null && typeof (v as CreditSettings).lowerCharges === 'boolean';

export function creditsApi(api: NgsciApi) {
  return {
    load: async (month: string): Promise<CreditsData> => {
      const [list, statement] = await Promise.all([
        api.request('GET', '/admin/credits', isList),
        api.request('GET', `/admin/credits/statement/${month}`, isStatement),
      ]);
      return { list, statement };
    },
    add: (g: {
      cloud: string;
      amountMicros: number;
      startsOn: string;
      expiresOn: string;
      note?: string;
    }) => api.request('POST', '/admin/credits', isGrant, g),
    remove: (id: number) => api.request('DELETE', `/admin/credits/${id}`, isGrant),
    /** whether credits also lower what researchers are charged (rows the meter writes from now) */
    setLowerCharges: (on: boolean) =>
      api.request('PUT', '/admin/credits/settings', isSettings, { lowerCharges: on }),
  };
}

/** A UTC day as an admin types it (YYYY-MM-DD), checked to exist. */
export function parseDay(text: string, what: string): string {
  const t = text.trim();
  const ok =
    /^\d{4}-\d{2}-\d{2}$/.test(t) &&
    !Number.isNaN(Date.parse(`${t}T00:00:00Z`)) &&
    new Date(`${t}T00:00:00Z`).toISOString().slice(0, 10) === t;
  if (!ok) throw new Error(`${what}: '${t}' is not a day such as 2027-03-31`);
  return t;
}

const CLOUD_LABEL: Record<string, string> = { aws: 'AWS', gcp: 'GCP', azure: 'Azure' };
const STATE_LABEL: Record<string, string> = {
  upcoming: 'starts later',
  active: 'active',
  used_up: 'used up',
  expired: 'expired',
};

export function creditsPart(
  p: Part<CreditsData>,
  kit: FormKit,
  calls: ReturnType<typeof creditsApi>,
  form: HTMLElement,
): HTMLElement {
  return part('Cloud credits', p, ({ list, statement }) =>
    h(
      'div',
      {},
      ...list.alerts.map((a) =>
        h('p', { class: 'jp-ngsci-hint jp-ngsci-warning', role: 'alert' }, a.message),
      ),
      list.grants.length
        ? table(
            ['Cloud', 'Amount', 'Used', 'Left', 'From', 'Until', 'State', 'Note', ''],
            list.grants.map((g) => [
              CLOUD_LABEL[g.cloud] ?? g.cloud,
              formatMicros(g.amountMicros),
              formatMicros(g.usedMicros),
              formatMicros(g.remainingMicros),
              g.startsOn,
              g.expiresOn,
              STATE_LABEL[g.state] ?? g.state,
              g.note ?? '',
              h(
                'button',
                {
                  class: 'jp-mod-styled',
                  type: 'button',
                  'aria-label': `Remove the ${CLOUD_LABEL[g.cloud] ?? g.cloud} grant ${g.id}`,
                  'data-focus-key': `credit-${g.id}`,
                  onclick: () =>
                    void kit.act(
                      'credit',
                      () => calls.remove(g.id),
                      `Removed the ${CLOUD_LABEL[g.cloud] ?? g.cloud} grant of ${formatMicros(g.amountMicros)}.`,
                    ),
                },
                'Remove',
              ),
            ]),
            'Credit grants',
          )
        : h(
            'p',
            { class: 'jp-ngsci-hint' },
            'No credit grants: every cloud is paid at list price.',
          ),
      h(
        'p',
        { class: 'jp-ngsci-hint' },
        list.lowerCharges
          ? 'Credits also lower what researchers are charged: the part of their usage a grant covers is not charged to them (from when this was turned on). '
          : "Researchers are charged list price times their plan; credits lower only the organisation's cost. ",
        h(
          'button',
          {
            class: 'jp-mod-styled',
            type: 'button',
            'aria-pressed': list.lowerCharges ? 'true' : 'false',
            'data-focus-key': 'credit-lower-charges',
            onclick: () =>
              void kit.act(
                'credit',
                () => calls.setLowerCharges(!list.lowerCharges),
                list.lowerCharges
                  ? 'Researchers are charged list price times their plan again, for usage from now on.'
                  : 'Credits now also lower what researchers are charged, for usage from now on.',
              ),
          },
          list.lowerCharges
            ? "Stop lowering researchers' charges"
            : "Also lower researchers' charges",
        ),
      ),
      h('h3', {}, `${statement.month}: list cost, credits and net cost per cloud`),
      table(
        ['Cloud', 'List cost', 'Credits applied', 'Net cost'],
        [
          ...statement.clouds.map((c) => [
            CLOUD_LABEL[c.cloud] ?? c.cloud,
            formatMicros(c.listMicros),
            formatMicros(c.creditsMicros),
            formatMicros(c.netMicros),
          ]),
          [
            'Total',
            formatMicros(statement.listMicros),
            formatMicros(statement.creditsMicros),
            formatMicros(statement.netMicros),
          ],
        ],
        'Credits per cloud this month',
      ),
      form,
    ),
  );
}

export function creditForm(kit: FormKit, calls: ReturnType<typeof creditsApi>): HTMLElement {
  const kept = kit.has('credit');
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
  const cloud = h(
    'select',
    { name: 'creditCloud', 'data-focus-key': 'creditCloud' },
    ...['aws', 'gcp', 'azure'].map((c) => h('option', { value: c }, CLOUD_LABEL[c]!)),
  );
  const amount = field('creditAmount', '50,000', 'decimal');
  const starts = field('creditStarts', new Date().toISOString().slice(0, 10));
  const expires = field('creditExpires', '2027-03-31');
  const note = field('creditNote', 'research credits');
  return kit.keptForm(
    'credit',
    'Record a credit grant',
    [
      h('label', {}, 'Cloud ', cloud),
      h('label', {}, 'Amount (USD) ', amount),
      h('label', {}, 'First day (UTC, empty for today) ', starts),
      h('label', {}, 'Last day (UTC) ', expires),
      h('label', {}, 'Note ', note),
    ],
    'Record grant',
    async (say) => {
      let amountMicros: number;
      let startsOn: string;
      let expiresOn: string;
      try {
        amountMicros = parseDollars(amount.value);
        if (amountMicros <= 0) throw new Error('the amount must be more than $0');
        startsOn = starts.value.trim()
          ? parseDay(starts.value, 'First day')
          : new Date().toISOString().slice(0, 10);
        expiresOn = parseDay(expires.value, 'Last day');
        if (expiresOn < startsOn)
          throw new Error(`the last day (${expiresOn}) is before the first (${startsOn})`);
      } catch (err) {
        say((err as Error).message, true);
        return;
      }
      await kit.act(
        'credit',
        () =>
          calls.add({
            cloud: cloud.value,
            amountMicros,
            startsOn,
            expiresOn,
            ...(note.value.trim() ? { note: note.value.trim() } : {}),
          }),
        `Recorded ${formatMicros(amountMicros)} of ${CLOUD_LABEL[cloud.value]} credits, ${startsOn} to ${expiresOn}.`,
      );
    },
  );
}
