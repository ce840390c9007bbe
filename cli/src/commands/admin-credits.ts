/**
 * `ngsci admin credits`: cloud credit grants over `/api/v1/admin/credits` — list them with what
 * usage has drawn down and the alerts, record one, remove one, and the month's list cost, credits
 * applied and net cost per cloud.
 */
import type {
  CreditGrant,
  CreditGrantList,
  CreditSettings,
  CreditStatement,
} from '@ngsci/contract';
import { parse, str } from '../args.js';
import { EXIT, UsageError } from '../errors.js';
import { table } from '../output.js';
import { dollars, parseDollars, parseInteger } from '../parse.js';
import { help, type Ctx } from './user.js';
// a cycle admin.ts → here → admin.ts, safe: splitVerb is only called, never read at load
import { splitVerb } from './admin.js';

export const CREDITS_HELP = `Usage: ngsci admin credits VERB ...

Verbs:
  credits [list]                              every grant: amount, used, left, state; then alerts
                                              (a grant that runs out or expires unused within 30 days)
  credits add --cloud aws|gcp|azure --amount DOLLARS --expires YYYY-MM-DD
              [--starts YYYY-MM-DD] [--note TEXT]
                                              record a grant (--starts: default today, UTC);
                                              --amount 50000 or 50,000.00
  credits remove ID                           forget a grant (its credit no longer applies, also
                                              to past months)
  credits statement [--month YYYY-MM] [--csv]
                                              list cost, credits applied and net cost per cloud
  credits --lower-charges on|off              whether credits also lower what researchers are
                                              charged (off: list price times their plan); rows
                                              the meter wrote before keep their charge

Every verb takes --url URL, --token TOKEN (an admin's), --json and --help.`;

const CLOUDS = ['aws', 'gcp', 'azure'];

function parseDay(raw: string, flag: string): string {
  const s = raw.trim();
  const ok =
    /^\d{4}-\d{2}-\d{2}$/.test(s) &&
    !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) &&
    new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s;
  if (!ok) throw new UsageError(`${flag} must be a day such as 2027-03-31, not '${raw}'`);
  return s;
}

/** Dollars as admins write grants: 50000, 50,000, $50,000.00 (commas only between thousands). */
export function parseGrantDollars(raw: string, flag: string): number {
  const s = raw.trim().replace(/^\$/, '');
  if (!/^\d{1,3}(,\d{3})*(\.\d+)?$|^\d+(\.\d+)?$/.test(s))
    throw new UsageError(
      `${flag} must be an amount in dollars such as 50000 or 50,000.00, not '${raw}'`,
    );
  return parseDollars(s.replace(/,/g, ''), flag);
}

const grantRows = (gs: CreditGrant[]) =>
  table(
    ['id', 'cloud', 'amount', 'used', 'left', 'starts', 'expires', 'state', 'note'],
    gs.map((g) => [
      g.id,
      g.cloud,
      dollars(g.amountMicros),
      dollars(g.usedMicros),
      dollars(g.remainingMicros),
      g.startsOn,
      g.expiresOn,
      g.state.replace('_', ' '),
      g.note,
    ]),
  );

const print = (ctx: Ctx, data: unknown, human: () => string) =>
  ctx.io.out(`${ctx.json ? JSON.stringify(data, null, 2) : human()}\n`);

export async function credits(ctx: Ctx, args: string[]): Promise<number> {
  const { verb, rest } = splitVerb(args, {
    valueFlags: ['cloud', 'amount', 'starts', 'expires', 'note', 'month', 'lower-charges'],
  });
  if (verb === undefined || verb === 'list') {
    const p = parse(
      'admin credits',
      rest,
      { 'lower-charges': { type: 'string' } },
      { min: 0, max: 0, names: '' },
    );
    if (p.values.help) return help(ctx, CREDITS_HELP);
    const lower = str(p.values['lower-charges']);
    if (lower !== undefined) {
      if (verb === 'list') throw new UsageError('admin credits: --lower-charges takes no verb');
      if (lower !== 'on' && lower !== 'off')
        throw new UsageError(`admin credits: --lower-charges must be on or off, not '${lower}'`);
      const saved = await ctx
        .api()
        .put<CreditSettings>('/admin/credits/settings', { lowerCharges: lower === 'on' });
      print(ctx, saved, () =>
        saved.lowerCharges
          ? 'credits now also lower what researchers are charged (usage the meter writes from now on)'
          : 'researchers are charged list price times their plan again (usage written from now on)',
      );
      return EXIT.ok;
    }
    const list = await ctx.api().get<CreditGrantList>('/admin/credits');
    print(ctx, list, () => {
      const setting = `credits lower researchers' charges: ${list.lowerCharges ? 'on' : 'off'}`;
      if (!list.grants.length) return `no credit grants\n${setting}`;
      const alerts = list.alerts.map((a) => `! ${a.message}`);
      return [grantRows(list.grants), setting, ...(alerts.length ? ['', ...alerts] : [])].join(
        '\n',
      );
    });
    return EXIT.ok;
  }
  if (verb === 'add') {
    const p = parse(
      'admin credits add',
      rest,
      {
        cloud: { type: 'string' },
        amount: { type: 'string' },
        starts: { type: 'string' },
        expires: { type: 'string' },
        note: { type: 'string' },
      },
      { min: 0, max: 0, names: '' },
    );
    if (p.values.help) return help(ctx, CREDITS_HELP);
    const cloud = str(p.values.cloud);
    if (!cloud || !CLOUDS.includes(cloud))
      throw new UsageError(`admin credits add: --cloud must be one of ${CLOUDS.join(', ')}`);
    if (p.values.amount === undefined)
      throw new UsageError('admin credits add: missing --amount DOLLARS');
    if (p.values.expires === undefined)
      throw new UsageError('admin credits add: missing --expires YYYY-MM-DD');
    const amountMicros = parseGrantDollars(str(p.values.amount)!, '--amount');
    if (amountMicros <= 0) throw new UsageError('admin credits add: --amount must be more than 0');
    const startsOn =
      p.values.starts === undefined
        ? new Date().toISOString().slice(0, 10)
        : parseDay(str(p.values.starts)!, '--starts');
    const expiresOn = parseDay(str(p.values.expires)!, '--expires');
    if (expiresOn < startsOn)
      throw new UsageError(
        `admin credits add: --expires ${expiresOn} is before --starts ${startsOn}`,
      );
    const note = str(p.values.note);
    const g = await ctx.api().post<CreditGrant>('/admin/credits', {
      cloud,
      amountMicros,
      startsOn,
      expiresOn,
      ...(note ? { note } : {}),
    });
    print(ctx, g, () => `recorded grant ${g.id}\n${grantRows([g])}`);
    return EXIT.ok;
  }
  if (verb === 'remove' || verb === 'delete') {
    const p = parse('admin credits remove', rest, {}, { min: 1, max: 1, names: 'ID' });
    if (p.values.help) return help(ctx, CREDITS_HELP);
    const id = parseInteger(p.positionals[0]!, 'ID', 1, Number.MAX_SAFE_INTEGER);
    const g = await ctx.api().delete<CreditGrant>(`/admin/credits/${id}`);
    print(ctx, g, () => `removed grant ${id} (${g.cloud}, ${dollars(g.amountMicros)})`);
    return EXIT.ok;
  }
  if (verb === 'statement') {
    const p = parse(
      'admin credits statement',
      rest,
      { month: { type: 'string' }, csv: { type: 'boolean', default: false } },
      { min: 0, max: 0, names: '' },
    );
    if (p.values.help) return help(ctx, CREDITS_HELP);
    const month = str(p.values.month) ?? new Date().toISOString().slice(0, 7);
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month))
      throw new UsageError(`admin credits statement: --month must be YYYY-MM, not '${month}'`);
    const s = await ctx.api().get<CreditStatement>(`/admin/credits/statement/${month}`);
    if (p.values.csv) {
      const rows = ['month,cloud,list_micros,credits_micros,net_micros'];
      for (const c of s.clouds)
        rows.push([s.month, c.cloud, c.listMicros, c.creditsMicros, c.netMicros].join(','));
      rows.push([s.month, 'total', s.listMicros, s.creditsMicros, s.netMicros].join(','));
      ctx.io.out(`${rows.join('\n')}\n`);
      return EXIT.ok;
    }
    print(ctx, s, () =>
      table(
        ['cloud', 'list cost', 'credits', 'net cost'],
        [
          ...s.clouds.map((c) => [
            c.cloud,
            dollars(c.listMicros),
            dollars(c.creditsMicros),
            dollars(c.netMicros),
          ]),
          ['total', dollars(s.listMicros), dollars(s.creditsMicros), dollars(s.netMicros)],
        ],
      ),
    );
    return EXIT.ok;
  }
  throw new UsageError(`admin credits: unknown verb '${verb}' (list, add, remove, statement)`);
}
