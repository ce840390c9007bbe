/**
 * Request body limits, checked before anything reads the body and before authentication: a
 * declared Content-Length over the limit is refused at once, and a body without one (chunked) is
 * read only up to the limit. So an anonymous client cannot make the service buffer megabytes to
 * learn that it is not signed in. The refusal is hono's HTTPException 413, which app.ts's one
 * error handler answers with the service's error shape (`payload_too_large`).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';

/**
 * A middleware that holds every request body to `maxFor(path)` bytes: the few routes that need
 * more (an agent's audit batch, the bridge's start request) name their own, the rest the default.
 */
export function requestBodyLimit(maxFor: (path: string) => number): MiddlewareHandler {
  const bySize = new Map<number, MiddlewareHandler>();
  const limiterFor = (maxSize: number) => {
    let limiter = bySize.get(maxSize);
    if (!limiter) {
      limiter = bodyLimit({
        maxSize,
        onError: (c) => tooLarge(c, maxSize),
      });
      bySize.set(maxSize, limiter);
    }
    return limiter;
  };
  return async (c, next) => {
    const maxSize = maxFor(c.req.path);
    const length = c.req.header('content-length');
    const chunked = c.req.header('transfer-encoding') !== undefined;
    // from Node's HTTP server with no Content-Length and no Transfer-Encoding: HTTP/1.1 says there
    // is no body (every GET the read routes answer). Asking hono's limiter would build a whole web
    // Request for nothing, a tenth of such a request's CPU (bench/api). A Request made in the
    // process (app.request) may carry a body without either header: the limiter reads it.
    const fromHttp = (c.env as { incoming?: unknown } | undefined)?.incoming !== undefined;
    if (fromHttp && length === undefined && !chunked) return next();
    if (length !== undefined && !chunked) {
      // decided on the header alone, without touching `c.req.raw.body`: that turns the request
      // into a web stream, and when a later step refuses the request unread (401, 403) nothing
      // drains it, so @hono/node-server closes the connection and the proxy's next request on
      // it, maybe another user's, fails with a 503 (found by API fuzzing, docs/security.md)
      const declared = Number.parseInt(length, 10);
      if (declared > maxSize) {
        // read and dropped first when it is not much larger: a proxy still sending it when the
        // connection closed answered its client 503 instead of this 413 (found by API fuzzing)
        if (declared <= DRAIN_MAX_BYTES && (await drained(c, DRAIN_MAX_BYTES)))
          return tooLarge(c, maxSize, { keepAlive: true });
        return tooLarge(c, maxSize);
      }
      return next();
    }
    return limiterFor(maxSize)(c, next);
  };
}

/**
 * A refused body up to this size is read to its end and dropped before the 413, so the
 * connection stays usable; a larger one is refused at once and the connection closed.
 */
export const DRAIN_MAX_BYTES = 1024 * 1024;

/** Reads the request body to its end, dropping it; false if it was longer than `max` bytes. */
async function drained(c: Context, max: number): Promise<boolean> {
  const body = c.req.raw.body;
  if (!body) return true;
  const reader = body.getReader();
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return true;
      read += value.byteLength;
      if (read > max) return false;
    }
  } catch {
    return false;
  } finally {
    reader.releaseLock();
  }
}

/**
 * The 413. Unless the refused body was read to its end (`keepAlive`), with `Connection: close`:
 * the rest of the body is still on the connection, so neither the client nor a proxy may reuse it.
 */
function tooLarge(c: Context, maxSize: number, opts: { keepAlive?: boolean } = {}): never {
  if (!opts.keepAlive) c.header('connection', 'close');
  throw new HTTPException(413, {
    message: `the request body is larger than the ${maxSize} bytes this route accepts`,
  });
}
