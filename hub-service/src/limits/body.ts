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
  return (c, next) => {
    const maxSize = maxFor(c.req.path);
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      // decided on the header alone, without touching `c.req.raw.body`: that turns the request
      // into a web stream, and when a later step refuses the request unread (401, 403) nothing
      // drains it, so @hono/node-server closes the connection and the proxy's next request on
      // it, maybe another user's, fails with a 503 (found by API fuzzing, docs/security.md)
      if (Number.parseInt(length, 10) > maxSize) return tooLarge(c, maxSize);
      return next();
    }
    return limiterFor(maxSize)(c, next);
  };
}

/**
 * The 413, with `Connection: close`: the body that was refused is not read, so the connection
 * cannot carry another request and the client (or the proxy) must not reuse it.
 */
function tooLarge(c: Context, maxSize: number): never {
  c.header('connection', 'close');
  throw new HTTPException(413, {
    message: `the request body is larger than the ${maxSize} bytes this route accepts`,
  });
}
