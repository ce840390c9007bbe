/**
 * Server-Sent Events over `fetch` (an `EventSource` cannot send the `Authorization` header the
 * service requires). The parts of the format the service uses: `id`, `event`, `data`
 * (multi-line joined with \n), comments and blank-line dispatch; any of \r\n, \r, \n ends a line.
 */

export interface SseMessage {
  /** the last `id` the stream set (it carries over, as in the spec) */
  id: string | null;
  event: string;
  data: string;
}

/** Feeds text chunks in, calls `onMessage` for each complete message. */
export class SseParser {
  private buffer = '';
  private id: string | null = null;
  private event = '';
  private data: string[] = [];

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl === -1) return;
      // a \r at the very end may be the first half of \r\n: wait for the next chunk
      if (this.buffer[nl] === '\r' && nl === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, nl);
      const width = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + width);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length)
        this.onMessage({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
  }
}

/** Reads an SSE response body to its end, yielding each message. */
export async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const queue: SseMessage[] = [];
  const parser = new SseParser((m) => queue.push(m));
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
      while (queue.length) yield queue.shift()!;
    }
    parser.push(`${decoder.decode()}\n`);
    while (queue.length) yield queue.shift()!;
  } finally {
    reader.releaseLock();
  }
}
