/**
 * A user's instances: list, launch, stop, resize, and the live lifecycle events of a server.
 * A user acts on their own servers; an admin may name another user with `?user=`.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import {
  DEFAULT_SERVER,
  chosenSizeId,
  Instance,
  InstanceList,
  LaunchRequest,
  ResizeRequest,
  ServerName,
  StopRequest,
} from '@ngsci/contract';
import { newRouter, type AppDeps, type AppEnv } from '../http.js';
import { ApiError } from '../errors.js';
import { toInstance } from '../instances/store.js';
import { billedByInstance } from '../metering/live.js';
import { liveParts, subjectGroups, type Reads } from './usage.js';
import { errors, json } from './common.js';

const ServerParam = z.object({ server: ServerName });
const UserQuery = z.object({
  user: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .meta({ description: 'admins only: act for this user' }),
});

/** The user a request acts for: the caller, or with `?user=` someone else if the caller is an admin. */
function subject(c: Context<AppEnv>, requested: string | undefined): string {
  const me = c.get('user');
  if (!requested || requested === me.name) return me.name;
  if (!me.admin)
    throw new ApiError(403, 'forbidden', "only admins may act on another user's servers");
  return requested;
}

/**
 * A stop's optional body. Read by hand, not declared on the route: clients have always posted
 * stops with a JSON content type and no body, which a declared JSON body would refuse.
 */
async function stopRequest(c: Context<AppEnv>): Promise<z.output<typeof StopRequest>> {
  const raw = (await c.req.text()).trim();
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ApiError(400, 'validation_failed', 'the body of a stop must be JSON (StopRequest)');
  }
  const checked = StopRequest.safeParse(parsed);
  if (!checked.success) {
    const first = checked.error.issues[0];
    throw new ApiError(
      400,
      'validation_failed',
      `${first?.path.join('.') || 'body'}: ${first?.message ?? 'not a StopRequest'}`,
    );
  }
  return checked.data;
}

/** A heartbeat after this long without an event keeps proxies from closing an idle stream. */
const PING_AFTER_MS = 15_000;
/** What a refused stream is told to wait: streams end when tabs close, so soon is reasonable. */
const STREAM_RETRY_SECONDS = 10;

export function instanceRoutes(
  deps: Pick<AppDeps, 'store' | 'lifecycle' | 'events' | 'metering' | 'database' | 'hub'>,
  reads: Reads = {},
) {
  const r = newRouter();

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances',
      request: {
        query: UserQuery.extend({
          all: z
            .enum(['true', 'false'])
            .optional()
            .meta({ description: 'include ended instances' }),
        }),
      },
      responses: {
        200: json(InstanceList, 'the instances, newest first'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const user = subject(c, q.user);
      const includeEnded = q.all === 'true';
      // the rows change only when written (the read cache forgets them then: read-cache.ts)
      const list = () => deps.store.list({ user, includeEnded });
      const rows = reads.cache
        ? await reads.cache.get(user, `instances:${includeEnded}`, list)
        : await list();
      // billed so far per instance, live to this second on the service's clock (figures.ts)
      const now = deps.metering.now();
      const groups = await subjectGroups(c, deps.hub, user);
      const { billed, streams } = await billedByInstance(
        liveParts(deps, reads),
        user,
        () => groups,
        rows.map((r) => r.id),
        now,
      );
      return c.json(
        {
          instances: rows.map((r) => ({ ...toInstance(r), billedMicros: billed.get(r.id) ?? 0 })),
          asOf: now.toISOString(),
          streams,
        },
        200,
      );
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/instances',
      request: {
        query: UserQuery,
        body: { content: { 'application/json': { schema: LaunchRequest } }, required: true },
      },
      responses: {
        202: json(Instance, 'the hub accepted the launch; follow the events'),
        // 404: an admin's `?user=` names nobody the hub knows (found by API fuzzing)
        ...errors(400, 401, 403, 404, 409, 429, 502, 503),
      },
    }),
    async (c) => {
      const user = subject(c, c.req.valid('query').user);
      const body = c.req.valid('json');
      const row = await deps.lifecycle.launch(user, {
        ...body,
        // a pair (cpu, gpu) is launched as its size id, `m.t4`
        size: chosenSizeId(body) ?? '',
        server: body.server ?? DEFAULT_SERVER,
        spot: body.spot ?? false,
      });
      // a launch that named no cloud says where it went and why (metering/credits.ts)
      return c.json(
        { ...toInstance(row), ...(row.placement ? { placement: row.placement } : {}) },
        202,
      );
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{server}',
      request: { params: ServerParam, query: UserQuery },
      responses: {
        200: json(Instance, 'the newest instance of the server'),
        ...errors(401, 403, 404),
      },
    }),
    async (c) => {
      const { server } = c.req.valid('param');
      const user = subject(c, c.req.valid('query').user);
      const row = await deps.store.latest(user, server);
      if (!row) throw new ApiError(404, 'not_found', `no server named '${server}'`);
      // billed so far, as the list gives it ("this run cost" once %%ngsci stop_after stopped it)
      const groups = await subjectGroups(c, deps.hub, user);
      const { billed } = await billedByInstance(
        liveParts(deps, reads),
        user,
        () => groups,
        [row.id],
        deps.metering.now(),
      );
      return c.json({ ...toInstance(row), billedMicros: billed.get(row.id) ?? 0 }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/instances/{server}/stop',
      description:
        'Stops the server. An optional JSON body (`StopRequest`: `reason`, `cell`, `graceSeconds` ' +
        'up to 300) announces the stop instead (`%%ngsci stop_after`): it is recorded as a ' +
        'lifecycle event and happens after the grace, or at once when a stop without grace comes ' +
        'first (the JupyterLab page does that once it has saved the open documents). No body, an ' +
        'empty body or no grace stops at once.',
      request: { params: ServerParam, query: UserQuery },
      responses: {
        202: json(Instance, 'stopping, or running until the announced stop'),
        ...errors(400, 401, 403, 404, 409, 502),
      },
    }),
    async (c) => {
      const { server } = c.req.valid('param');
      const user = subject(c, c.req.valid('query').user);
      const body = await stopRequest(c);
      const row = body.graceSeconds
        ? await deps.lifecycle.stopAfterGrace(user, server, {
            reason: body.reason ?? 'stop_after',
            cell: body.cell ?? 'finished',
            graceSeconds: body.graceSeconds,
          })
        : await deps.lifecycle.stop(user, server);
      return c.json(toInstance(row), 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/instances/{server}/resize',
      request: {
        params: ServerParam,
        query: UserQuery,
        body: { content: { 'application/json': { schema: ResizeRequest } }, required: true },
      },
      responses: {
        202: json(
          Instance,
          'the resize is recorded and the old size is stopping; the new one starts once the stop ' +
            'has finished, also across a service restart (follow the events)',
        ),
        ...errors(400, 401, 403, 404, 409, 502),
      },
    }),
    async (c) => {
      const { server } = c.req.valid('param');
      const row = await deps.lifecycle.resize(
        subject(c, c.req.valid('query').user),
        server,
        c.req.valid('json'),
      );
      return c.json(toInstance(row), 202);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/instances/{server}/events',
      description:
        'Server-Sent Events: every lifecycle event of every instance of this server, as `event: instance` ' +
        'with an InstanceEvent as data, and `event: ping` after 15 s without one. Replays from ' +
        '`Last-Event-ID` (or `?after=`), else from the newest instance. A user holds at most ' +
        'NGSCI_SSE_PER_USER streams open at once (429 beyond; closing one frees its place).',
      request: {
        params: ServerParam,
        query: UserQuery.extend({ after: z.coerce.number().int().min(0).optional() }),
      },
      responses: {
        200: {
          content: { 'text/event-stream': { schema: z.string() } },
          description: 'an event stream',
        },
        ...errors(401, 403, 429),
      },
    }),
    (async (c: Context<AppEnv>) => {
      const { server } = ServerParam.parse(c.req.param());
      const q = c.req.query();
      const user = subject(c, q.user);
      let after = Number(c.req.header('last-event-id') ?? q.after ?? NaN);
      if (!Number.isInteger(after) || after < 0) {
        // from the start of the newest instance, so a late subscriber sees the whole start
        const latest = await deps.store.latest(user, server);
        const first = latest ? (await deps.store.events(latest.id, 0))[0] : undefined;
        after = first ? first.id - 1 : 0;
      }
      // the caller's streams count, also those an admin opens on other users' servers
      const caller = c.get('user').name;
      const events = await deps.events.open(caller, user, server, after);
      if (!events) {
        c.header('retry-after', String(STREAM_RETRY_SECONDS));
        throw new ApiError(
          429,
          'rate_limited',
          `${caller} already has ${deps.events.perUser} event streams open (NGSCI_SSE_PER_USER); ` +
            `close one (another tab?) or try again in ${STREAM_RETRY_SECONDS} s`,
        );
      }
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => events.close());
        try {
          // a comment at once: a proxy that holds the headers until body bytes (the hub's
          // configurable-http-proxy does) would otherwise keep the stream unopened until a ping
          await stream.write(': open\n\n');
          while (!events.isClosed && !stream.aborted) {
            const batch = await events.next(PING_AFTER_MS);
            for (const e of batch)
              await stream.writeSSE({
                id: String(e.id),
                event: 'instance',
                data: JSON.stringify(e),
              });
            if (!batch.length && !events.isClosed)
              await stream.writeSSE({ event: 'ping', data: '{}' });
          }
        } catch (err) {
          // the client reconnects with Last-Event-ID; the reason stays in the log
          c.get('log').warn({ err, user, server }, 'an event stream ended on an error');
        } finally {
          events.close();
        }
      });
    }) as never,
  );

  return r;
}
