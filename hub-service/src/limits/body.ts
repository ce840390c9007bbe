/**
 * Request body limits, checked before anything reads the body and before authentication: a
 * declared Content-Length over the limit is refused at once, and a body without one (chunked) is
 * read only up to the limit. So an anonymous client cannot make the service buffer megabytes to
 * learn that it is not signed in. The refusal is hono's HTTPException 413, which app.ts's one
 * error handler answers with the service's error shape (`payload_too_large`).
 */
import type { MiddlewareHandler } from 'hono';
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
        onError: () => {
          throw new HTTPException(413, {
            message: `the request body is larger than the ${maxSize} bytes this route accepts`,
          });
        },
      });
      bySize.set(maxSize, limiter);
    }
    return limiter;
  };
  return (c, next) => limiterFor(maxFor(c.req.path))(c, next);
}
