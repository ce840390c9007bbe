/**
 * The admin sign-in: hub-service as a JupyterHub OAuth client (session/). The admin scope
 * reaches the service this way, in a cookie for the service's prefix, and never through a
 * single-user server's token.
 * - `GET <prefix>oauth_login?next=<path>`: remember state, send the browser to the hub;
 * - `GET <prefix>oauth_callback`: check state, trade the code, set the session cookie;
 * - `GET <prefix>signed_in`: a tiny page that closes itself (the panel's popup ends there);
 * - `GET /api/v1/session`, `POST /api/v1/session/logout`: the session for the admin panel.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { AdminSession } from '@ngsci/contract';
import type { Context } from 'hono';
import { newRouter, type AppDeps } from '../http.js';
import { ApiError } from '../errors.js';
import { authorizeUrl, exchangeCode, safeNext } from '../session/oauth.js';
import { CSRF_HEADER, type AdminSessions } from '../session/sessions.js';
import { errors, json } from './common.js';

const LoginQuery = z.object({
  next: z.string().max(2000).optional(),
});

const CallbackQuery = z.object({
  code: z.string().min(1).max(1000).optional(),
  state: z.string().min(1).max(200).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(1000).optional(),
});

/** Browser-facing routes under the prefix, outside /api/v1 and its token middleware. */
export function oauthRoutes(deps: Pick<AppDeps, 'auth'>, sessions: AdminSessions) {
  const r = newRouter();

  r.get('/oauth_login', (c) => {
    const q = LoginQuery.parse(c.req.query());
    const next = q.next === undefined ? null : safeNext(q.next);
    if (q.next !== undefined && next === null)
      throw new ApiError(
        400,
        'validation_failed',
        'next must be a path on this site, such as /hub/home',
      );
    const { state, challenge } = sessions.newState(next);
    sessions.setState(c, state);
    c.header('cache-control', 'no-store');
    return c.redirect(authorizeUrl(sessions.oauth, state.state, challenge), 302);
  });

  r.get('/oauth_callback', async (c) => {
    const q = CallbackQuery.parse(c.req.query());
    c.header('cache-control', 'no-store');
    if (q.error)
      throw new ApiError(
        403,
        'login_required',
        `JupyterHub did not sign you in: ${q.error_description ?? q.error}`,
      );
    if (!q.code || !q.state)
      throw new ApiError(400, 'validation_failed', 'the sign-in callback needs code and state');
    const state = sessions.takeState(c, q.state);
    if (state === 'missing')
      throw new ApiError(
        401,
        'login_required',
        'this sign-in expired or was started in another browser: start it again',
      );
    if (state === 'mismatch')
      throw new ApiError(403, 'csrf_failed', 'the sign-in state does not match: start it again');
    const token = await exchangeCode(sessions.oauth, q.code, state.verifier, sessions.fetch);
    const user = await deps.auth.resolveSession(token);
    sessions.start(c, token, user.name);
    if (state.next) return c.redirect(state.next, 302);
    return signedInPage(c, user.name, false);
  });

  r.get('/signed_in', (c) => signedInPage(c, null, true));

  return r;
}

/** The session API for the admin panel (its own auth: the cookie, nothing else). */
export function sessionRoutes(deps: Pick<AppDeps, 'auth'>, sessions: AdminSessions) {
  const r = newRouter();
  r.openAPIRegistry.registerComponent('securitySchemes', 'adminSession', {
    type: 'apiKey',
    in: 'cookie',
    name: 'ngsci-session',
    description: `the admin sign-in (GET <prefix>oauth_login); changes also need ${CSRF_HEADER}`,
  });

  r.openapi(
    createRoute({
      method: 'get',
      path: '/session',
      security: [{ adminSession: [] }],
      description:
        'The admin sign-in of this browser: who, whether an admin, and the CSRF value for changes.',
      responses: {
        200: json(AdminSession, 'the signed-in session'),
        ...errors(401, 403),
      },
    }),
    async (c) => {
      c.header('cache-control', 'no-store');
      const found = sessions.read(c);
      if (found.kind !== 'ok') {
        if (found.kind === 'invalid') sessions.end(c);
        throw new ApiError(
          401,
          'login_required',
          'not signed in: open <prefix>oauth_login (the admin panel\'s "Sign in as admin")',
        );
      }
      let user;
      try {
        user = await deps.auth.resolveSession(found.session.token);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'login_required') sessions.end(c);
        throw err;
      }
      return c.json(
        {
          user: user.name,
          admin: user.admin,
          csrf: found.session.csrf,
          expiresAt: new Date(found.session.expires).toISOString(),
        },
        200,
      );
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/session/logout',
      security: [],
      description: 'Ends the admin sign-in of this browser (clears its cookie).',
      responses: { 204: { description: 'signed out' } },
    }),
    (c) => {
      sessions.end(c);
      return c.body(null, 204);
    },
  );
  return r;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function signedInPage(c: Context, user: string | null, close: boolean) {
  const who = user ? ` as ${escapeHtml(user)}` : '';
  c.header('cache-control', 'no-store');
  c.header(
    'content-security-policy',
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  );
  return c.html(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ngsci: signed in</title>` +
      `<style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:32em}</style></head>` +
      `<body><h1>Signed in to ngsci${who}</h1>` +
      `<p>You can close this tab and go back to JupyterLab.</p>` +
      (close ? '<script>window.close()</script>' : '') +
      `</body></html>`,
  );
}
