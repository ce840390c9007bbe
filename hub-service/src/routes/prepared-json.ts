/**
 * A JSON answer made once and sent many times (the catalog: one object until the prices change):
 * its text, its gzip and its entity tag are computed when the object changes, never per request.
 * A client that sends `Accept-Encoding: gzip` (every browser does) gets the gzip, a tenth of the
 * bytes; one that sends the tag it holds (`If-None-Match`) gets 304 and no body.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Context } from 'hono';

export interface PreparedJson {
  text: string;
  gzip: Uint8Array<ArrayBuffer>;
  etag: string;
}

export function prepareJson(value: unknown): PreparedJson {
  const text = JSON.stringify(value);
  const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
  const zipped = gzipSync(text, { level: 9 });
  // a copy of its own (the zlib buffer may be a view of a shared pool)
  const gzip = new Uint8Array(new ArrayBuffer(zipped.length));
  gzip.set(zipped);
  return { text, gzip, etag };
}

/** Whether an Accept-Encoding header allows gzip (`gzip` or `*`, without q=0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.toLowerCase().split(',')) {
    const [coding, ...params] = part.trim().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (!q || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/** Whether an If-None-Match header names `etag` (or `*`); weak tags compare as strong here. */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

/** Answers `p`: 304 when the client holds it, gzip when allowed, else the text. */
export function sendPrepared(c: Context, p: PreparedJson): Response {
  const headers: Record<string, string> = {
    etag: p.etag,
    vary: 'Accept-Encoding',
    // stored, but asked again each time (the prices may change at any moment)
    'cache-control': 'private, no-cache',
  };
  if (matches(c.req.header('if-none-match'), p.etag)) return c.body(null, 304, headers);
  headers['content-type'] = 'application/json';
  if (acceptsGzip(c.req.header('accept-encoding')))
    return c.body(p.gzip, 200, { ...headers, 'content-encoding': 'gzip' });
  return c.body(p.text, 200, headers);
}
