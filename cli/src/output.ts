/** How results reach the terminal: aligned tables and key/value blocks, or JSON for scripts. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** whether stderr is a terminal (progress bars redraw in place) */
  tty: boolean;
  env: Record<string, string | undefined>;
  fetch: typeof fetch;
  /** waits, so tests can run `stop --in` without waiting for real */
  sleep(ms: number): Promise<void>;
}

export function table(
  headers: string[],
  rows: Array<Array<string | number | null | undefined>>,
): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n');
}

export function block(pairs: Array<[string, string | number | null | undefined]>): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs
    .map(([k, v]) => `${`${k}:`.padEnd(w + 1)}  ${v === null || v === undefined ? '-' : String(v)}`)
    .join('\n');
}
