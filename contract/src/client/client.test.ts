import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallError, SseParser, sseMessages, Transport } from './index.js';

const answer = (status: number, body: string, type = 'application/json') =>
  new Response(body, { status, headers: { 'content-type': type } });

/** The error a call rejects with (a call that succeeds fails the test). */
const failure = async <E = CallError>(p: Promise<unknown>): Promise<E> => {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error('the call succeeded');
};

describe('the shared transport', () => {
  test('sends the caller headers, JSON bodies and the accept header', async () => {
    const seen: Array<{ url: string; init: RequestInit }> = [];
    const t = new Transport({
      baseUrl: 'http://x/api/v1/',
      headers: () => ({ authorization: 'token t1' }),
      fetch: async (url, init) => {
        seen.push({ url: String(url), init: init! });
        return answer(200, '{"ok":true}');
      },
    });
    assert.deepEqual(await t.json('POST', '/notify', { body: { message: 'hi' } }), { ok: true });
    const h = seen[0]!.init.headers as Record<string, string>;
    assert.equal(seen[0]!.url, 'http://x/api/v1/notify');
    assert.equal(h.authorization, 'token t1');
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h.accept, 'application/json');
    assert.equal(seen[0]!.init.body, '{"message":"hi"}');
    assert.equal(seen[0]!.init.credentials, 'omit');
  });

  test("the service's error shape, another server's page, and no answer are told apart", async () => {
    const t = (res: () => Response | Promise<Response>) =>
      new Transport({ baseUrl: 'http://x', fetch: async () => res() });
    const service = await failure(
      t(() => answer(403, '{"code":"forbidden","message":"not yours","requestId":"r1"}')).call(
        'GET',
        '/a',
      ),
    );
    assert.ok(service instanceof CallError);
    assert.deepEqual(
      [service.kind, service.status, service.code, service.message, service.requestId],
      ['service', 403, 'forbidden', 'not yours', 'r1'],
    );
    const proxy = await failure(
      t(() => answer(502, '<html>Bad Gateway</html>', 'text/html')).call('GET', '/a'),
    );
    assert.deepEqual(
      [proxy.kind, proxy.code, proxy.message],
      ['http', 'http_502', '<html>Bad Gateway</html>'],
    );
    const none = await failure(
      t(() => {
        throw new TypeError('fetch failed');
      }).call('GET', '/a'),
    );
    assert.deepEqual([none.kind, none.status, none.code], ['network', 0, 'unreachable']);
    const aborted = await failure<Error>(
      t(() => {
        throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      }).call('GET', '/a'),
    );
    assert.equal(aborted.name, 'AbortError', 'an abort is the caller’s own, rethrown as it is');
  });
});

describe('server-sent events', () => {
  test('messages across chunk boundaries and every line ending; comments skipped; id carries over', () => {
    const got: string[] = [];
    const p = new SseParser((m) => got.push(`${m.event}|${m.id}|${m.data}`));
    for (const c of [
      ': hello\n',
      'id: 1\r',
      '\nevent: instance\ndata: {"a"',
      ':1}\n\n',
      'data: x\rdata: y\r\r',
      ': a lone \\r at the end of a chunk waits for the next one\n',
    ])
      p.push(c);
    assert.deepEqual(got, ['instance|1|{"a":1}', 'message|1|x\ny']);
  });

  test('a response body read to its end', async () => {
    const body = new Response('event: instance\ndata: 1\n\nevent: instance\ndata: 2\n\n').body!;
    const out = [];
    for await (const m of sseMessages(body)) out.push(m.data);
    assert.deepEqual(out, ['1', '2']);
  });
});
