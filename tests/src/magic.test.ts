/**
 * `%ngsci` in a real IPython kernel against the real service: the kernel runs from the venv with
 * a local instance's own environment (its token, NGSCI_API_URL, HOME), loads the magic by itself
 * (the venv's IPython config loads `ngsci_magic`, a package of its own: no hub-side code in a
 * kernel), and its verbs act on the real instance: `resize` changes its size,
 * `%%ngsci stop_after` stops it, `notify` reaches the user's webhook and, once the address is
 * confirmed by the link mailed to it, their email.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMTPServer } from 'smtp-server';
import { isAlive, ROOT, startStack, until, type Stack } from './stack.js';

interface Inst {
  id: string;
  state: string;
  size: string;
}
interface CellOutput {
  stdout: string;
  stderr: string;
  text: string;
  html: string;
  error: string | null;
}

const DRIVER = fileURLToPath(new URL('./magic-kernel.py', import.meta.url));

/** The environment and home of a running local instance, read from its process. */
function serverEnv(stack: Stack, instanceId: string): { env: Record<string, string>; cwd: string } {
  const pid = stack.pidOf(instanceId);
  assert.ok(pid, 'the instance has a pid');
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return { env, cwd: env.HOME! };
}

function runCells(
  where: { env: Record<string, string>; cwd: string },
  cells: string[],
): CellOutput[] {
  const res = spawnSync(join(ROOT, '.venv', 'bin', 'python'), [DRIVER], {
    input: JSON.stringify({ ...where, cells }),
    encoding: 'utf8',
    timeout: 150_000,
  });
  assert.equal(res.status, 0, `the kernel driver failed:\n${res.stderr}`);
  return res.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CellOutput);
}

describe('%ngsci in a real kernel', () => {
  let stack: Stack;
  let token: string;
  let hooks: Server;
  let smtp: SMTPServer;
  const posts: Array<Record<string, unknown>> = [];
  const mails: Array<{ to: string[]; data: string }> = [];

  before(async () => {
    hooks = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(raw) as Record<string, unknown>);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, cb) {
        let data = '';
        stream.on('data', (d: Buffer) => (data += d.toString()));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    stack = await startStack({
      database: 'postgres',
      env: {
        NGSCI_WEBHOOK_ALLOW: '127.0.0.1',
        NGSCI_SMTP_URL: `smtp://127.0.0.1:${smtpPort}?starttls=false`,
        NGSCI_SMTP_FROM: 'ngsci <hub@example.org>',
      },
    });
    token = await stack.userToken('researcher');
  });
  after(async () => {
    await stack?.stop();
    await new Promise((r) => hooks.close(r));
    await new Promise<void>((r) => smtp.close(() => r()));
  });

  const instance = async () =>
    (await (await stack.api('/instances/default', token)).json()) as Inst;
  const waitFor = (pred: (i: Inst) => boolean, what: string) =>
    until(
      async () => {
        const i = await instance();
        return pred(i) ? i : null;
      },
      what,
      120,
      stack,
    );

  test('status, notify and resize from a notebook kernel; resize changes the real size', async () => {
    const hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks/T0/B0/secret`;
    const prefs = await stack.api('/notifications/preferences', token, {
      method: 'PUT',
      body: JSON.stringify({
        webhookUrl: hookUrl,
        email: 'researcher@example.org',
        channels: { message: ['jupyterlab', 'email', 'webhook'] },
      }),
    });
    assert.equal(prefs.status, 200, await prefs.clone().text());
    // mail goes only to a confirmed address: open the link the service mailed to it
    const confirmation = await until(
      async () => mails.find((m) => m.to.includes('researcher@example.org')),
      'the confirmation mail',
      30,
      stack,
    );
    const text = confirmation.data
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    const link = /https?:\/\/\S+\/api\/v1\/notifications\/confirm\?token=[\w%-]+/.exec(text);
    assert.ok(link, 'the confirmation mail carries the link');
    const confirmed = await fetch(link[0]);
    assert.equal(confirmed.status, 200, await confirmed.clone().text());
    const launch = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    assert.equal(launch.status, 202, await launch.clone().text());
    const running = await waitFor(
      (i) => i.state === 'running' || i.state === 'failed',
      'cpu-small to run',
    );
    assert.equal(running.state, 'running');

    const [loaded, status, notify, bad, resize] = runCells(serverEnv(stack, running.id), [
      'import sys; print(sorted(m for m in sys.modules if m.startswith("ngsci_")))',
      '%ngsci status',
      '%ngsci notify "epoch 3 done: loss 0.12"',
      '%ngsci resize NOT_A_SIZE',
      '%ngsci resize cpu-large',
    ]);
    assert.equal(loaded!.error, null, loaded!.stderr);
    assert.equal(
      loaded!.stdout.trim(),
      "['ngsci_magic', 'ngsci_magic.figures', 'ngsci_magic.magic']",
      'the kernel loaded the magic package and nothing of the spawner',
    );
    assert.equal(status!.error, null, status!.stderr);
    assert.match(status!.text, /researcher · plan/);
    assert.match(status!.text, /default\s+cpu-small\s+local\s+running/);
    assert.match(status!.html, /<table class="jp-ngsci-table /, 'notebooks get an HTML table');
    assert.equal(notify!.error, null, notify!.stderr);
    assert.equal(bad!.error, null, 'a bad argument is not a traceback');
    assert.match(bad!.stderr, /^ngsci: \[usage\] 'NOT_A_SIZE' is not a size id/);
    assert.equal(resize!.error, null, resize!.stderr);
    assert.match(resize!.text, /from cpu-small to cpu-large/);

    const resized = await waitFor(
      (i) => i.id !== running.id && (i.state === 'running' || i.state === 'failed'),
      'cpu-large to run',
    );
    assert.equal(resized.state, 'running');
    assert.equal(resized.size, 'cpu-large');

    const post = await until(
      async () => posts.find((p) => String(p.body).includes('epoch 3 done')),
      'the webhook post',
      30,
      stack,
    );
    assert.equal(post.user, 'researcher');
    assert.match(String(post.text), /epoch 3 done: loss 0\.12/);
    const notices = (await (await stack.api('/notifications', token)).json()) as {
      notifications: Array<{ body: string; server: string | null }>;
    };
    const mail = await until(
      async () => mails.find((m) => m.data.includes('epoch 3 done')),
      'the email',
      30,
      stack,
    );
    assert.deepEqual(mail.to, ['researcher@example.org']);
    assert.match(mail.data, /From: ngsci <hub@example.org>/);
    assert.ok(
      notices.notifications.some(
        (n) => n.body === 'epoch 3 done: loss 0.12' && n.server === 'default',
      ),
      'JupyterLab lists it too',
    );
  });

  test('%%ngsci stop_after runs the cell, then stops the real instance', async () => {
    const running = await instance();
    assert.equal(running.state, 'running');
    const pid = stack.pidOf(running.id);
    assert.ok(pid && isAlive(pid));
    const [cell] = runCells(serverEnv(stack, running.id), [
      '%%ngsci stop_after\nanswer = 6 * 7\nprint("trained:", answer)',
    ]);
    assert.equal(cell!.error, null, cell!.stderr);
    assert.match(cell!.stdout, /trained: 42/);
    // no page shows this kernel: the service stops the server once the grace (30 s) is over
    assert.match(
      cell!.stdout,
      /server \('default'\) stops once JupyterLab has saved .* within 30 s/,
    );
    assert.doesNotMatch(cell!.stdout + cell!.stderr, /Traceback|KeyboardInterrupt/);
    const stopped = await waitFor(
      (i) => i.state === 'stopped' || i.state === 'failed',
      'the instance to stop',
    );
    assert.equal(stopped.state, 'stopped');
    assert.equal(isAlive(pid), false, 'the server process is gone');
  });
});
