/**
 * A TCP proxy between the service and a private Postgres that can freeze one exchange: the fault
 * tests restart Postgres at an exact point of a meter cycle or a job claim instead of hoping a
 * timer lines up. A trap matches a client message by its bytes (the SQL text of a first Parse, or
 * the parameters of a Bind: postgres.js prepares statements, so later runs carry only those) and
 * either never delivers it (the server never saw the query) or delivers it and swallows the
 * answer (the server did the work, the service never hears). Loopback only.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Trap {
  /** true for the client bytes of the query to catch */
  match: (text: string) => boolean;
  /** request: the query never reaches Postgres; reply: it runs, and its answer is lost */
  hold: 'request' | 'reply';
  /** reply traps: only an answer that carries rows (a claim that got a job) springs the trap */
  onlyWithRows?: boolean;
}

interface Link {
  client: Socket;
  upstream: Socket;
  holdRequests: boolean;
  holdReplies: boolean;
  /** a reply trap waiting for this link's next answer */
  inspect: { trap: Trap; fire: () => void } | null;
}

export class PgProxy {
  private armed: { trap: Trap; fire: () => void } | null = null;
  private readonly links = new Set<Link>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host?: string; port: number }): Promise<PgProxy> {
    const holder: { proxy?: PgProxy } = {};
    const server = createServer((client) => holder.proxy!.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    holder.proxy = new PgProxy(server, typeof addr === 'object' && addr ? addr.port : 0);
    return holder.proxy;
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Arms a trap; resolves once it has sprung. One trap at a time. */
  trap(trap: Trap): Promise<void> {
    return new Promise((resolve) => {
      this.armed = { trap, fire: resolve };
    });
  }

  disarm(): void {
    this.armed = null;
  }

  /** Connections through the proxy now (each a pooled connection of the service). */
  get connections(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host?: string; port: number }): void {
    const upstream = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    const link: Link = { client, upstream, holdRequests: false, holdReplies: false, inspect: null };
    this.links.add(link);
    const end = () => {
      this.links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    let reached = false;
    upstream.on('connect', () => (reached = true));
    upstream.on('close', end);
    upstream.on('error', () => {
      // Postgres is not there: the client hears a reset, as it would connecting to it directly
      // (a plain close makes postgres.js reconnect in a loop instead of failing the query)
      if (!reached) client.resetAndDestroy();
      end();
    });
    client.on('data', (chunk: Buffer) => {
      if (link.holdRequests) return;
      const armed = this.armed;
      if (armed && armed.trap.match(chunk.toString('latin1'))) {
        if (armed.trap.hold === 'request') {
          this.armed = null;
          link.holdRequests = true;
          armed.fire();
          return;
        }
        this.armed = null;
        link.inspect = armed;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (link.holdReplies) return;
      const inspect = link.inspect;
      if (inspect) {
        const types = messageTypes(chunk);
        if (!inspect.trap.onlyWithRows || types.includes('D')) {
          // swallowed: the query ran (and, once 'Z' is sent, committed) but nobody hears of it
          link.inspect = null;
          link.holdReplies = true;
          inspect.fire();
          return;
        }
        if (types.includes('Z')) {
          // an answer without rows: not the one we wait for, so the trap stays armed
          link.inspect = null;
          this.armed ??= inspect;
        }
      }
      client.write(chunk);
    });
  }
}

/** The backend message types in one chunk (each: a type byte and an int32 length). */
function messageTypes(chunk: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 5 <= chunk.length) {
    out.push(String.fromCharCode(chunk[i]!));
    i += 1 + chunk.readInt32BE(i + 1);
  }
  return out;
}
