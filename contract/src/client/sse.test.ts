import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, type SseMessage } from './sse.js';

test('messages split across chunks arrive whole; comments and pings are told apart', () => {
  const got: SseMessage[] = [];
  const p = new SseParser((m) => got.push(m));
  p.push('id: 7\nevent: instance\nda');
  p.push('ta: {"a":1}\n\n: keep-alive\n\nevent: ping\r\ndata: {}\r\n\r\n');
  p.push('data: line1\ndata: line2\n');
  assert.equal(got.length, 2);
  p.push('\n');
  assert.deepEqual(got, [
    { id: '7', event: 'instance', data: '{"a":1}' },
    { id: '7', event: 'ping', data: '{}' },
    { id: '7', event: 'message', data: 'line1\nline2' },
  ]);
});
