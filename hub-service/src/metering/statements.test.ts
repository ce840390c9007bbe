/**
 * The statement CSV (statements.ts): the same figures as the JSON statement, GPU money wasted
 * (contract gpu-waste.ts) included as the total row's `gpu_*` columns.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Statement, StatementLine } from '@ngsci/contract';
import { statementCsv } from './statements.js';

/** RFC 4180 rows (quoted cells with "" inside), as a spreadsheet reads them. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  assert.equal(cell + row.join(''), '', 'the CSV ends with CRLF');
  return rows;
}

/** The rows as objects by header name. */
function csvRecords(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text);
  for (const r of rows) assert.equal(r.length, header!.length, `a row of ${header!.length} cells`);
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

const line = (over: Partial<StatementLine>): StatementLine => ({
  kind: 'compute',
  server: 'default',
  instanceId: '6f1c1e5e-6a43-4c55-9e0b-4f4d3bb2c001',
  size: 'gpu-a100',
  cloud: 'local',
  region: 'local',
  spot: false,
  plan: 'standard',
  multiplierPpm: 1_000_000,
  ratePerHourMicros: 4_100_000,
  from: '2026-11-02T09:00:00.000Z',
  to: '2026-11-02T12:12:00.000Z',
  seconds: 11_520,
  amountMicros: 13_120_000,
  ...over,
});

const statement = (over: Partial<Statement> = {}): Statement => {
  const lines = [
    line({}),
    line({
      server: 'train, "big"',
      size: 'cpu-small',
      seconds: 3_600,
      amountMicros: 96_001,
      ratePerHourMicros: 96_001,
    }),
    line({
      kind: 'storage',
      server: null,
      instanceId: null,
      size: 'home-volume',
      seconds: 2_592_000,
      amountMicros: 800_000,
    }),
  ];
  return {
    user: 'ada',
    month: '2026-11',
    lines,
    computeMicros: 13_216_001,
    storageMicros: 800_000,
    totalMicros: 14_016_001,
    ...over,
  };
};

describe('statement CSV', () => {
  test("the total row carries the month's idle GPU seconds, sampled seconds, µ$ and dollars", () => {
    const s = statement({
      gpuIdle: {
        idleSeconds: 7_377,
        sampledSeconds: 11_490,
        idleMicros: 8_401_375,
        thresholdPercent: 5,
      },
    });
    const records = csvRecords(statementCsv(s));
    assert.deepEqual(parseCsv(statementCsv(s))[0]!.slice(-4), [
      'gpu_idle_seconds',
      'gpu_sampled_seconds',
      'gpu_idle_micros',
      'gpu_idle_usd',
    ]);
    const total = records.at(-1)!;
    assert.equal(total.kind, 'total');
    assert.equal(Number(total.gpu_idle_seconds), s.gpuIdle!.idleSeconds);
    assert.equal(Number(total.gpu_sampled_seconds), s.gpuIdle!.sampledSeconds);
    assert.equal(Number(total.gpu_idle_micros), s.gpuIdle!.idleMicros);
    // exact, as amount_usd: µ$ with six decimals, so a spreadsheet's sum is the JSON's to the µ$
    assert.equal(total.gpu_idle_usd, '8.401375');
    assert.equal(Number(total.amount_micros), s.totalMicros);
    // the waste is a share of the lines' money, never a charge of its own: the lines still sum
    // to the total, and no line carries a gpu figure
    const lines = records.slice(0, -1);
    assert.equal(lines.length, 3);
    assert.equal(
      lines.reduce((a, r) => a + Number(r.amount_micros), 0),
      s.totalMicros,
    );
    for (const r of lines) {
      assert.deepEqual(
        [r.gpu_idle_seconds, r.gpu_sampled_seconds, r.gpu_idle_micros, r.gpu_idle_usd],
        ['', '', '', ''],
      );
    }
    assert.equal(lines[1]!.server, 'train, "big"');
  });

  test('a month with GPUs that never idled says 0; a statement without the figure leaves the cells empty', () => {
    const busy = csvRecords(
      statementCsv(
        statement({
          gpuIdle: { idleSeconds: 0, sampledSeconds: 600, idleMicros: 0, thresholdPercent: 5 },
        }),
      ),
    ).at(-1)!;
    assert.deepEqual(
      [busy.gpu_idle_seconds, busy.gpu_sampled_seconds, busy.gpu_idle_micros, busy.gpu_idle_usd],
      ['0', '600', '0', '0.000000'],
    );
    const none = csvRecords(statementCsv(statement())).at(-1)!;
    assert.deepEqual(
      [none.gpu_idle_seconds, none.gpu_sampled_seconds, none.gpu_idle_micros, none.gpu_idle_usd],
      ['', '', '', ''],
    );
  });
});
