/**
 * The admin panel's Audit section: the hash chains' status (verify), alerts (security events),
 * silent agents, recent dataset reads, and the honeypot rules with add and remove. Every call
 * goes through the panel's one HTTP seam (`NgsciApi.request`/`send`, admin sign-in), and each
 * part says so plainly when the service does not offer its endpoint.
 */
import type { AuditEvent, AuditRule, AuditVerification, SecurityEvent } from '@ngsci/contract';
import { NgsciApiError, type NgsciApi } from '../api';
import { h, notice } from '../dom';
import { load, part, table, type Part } from './admin-kit';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const listOf =
  <T>(field: string) =>
  (v: unknown): v is Record<string, T[]> =>
    isObject(v) && Array.isArray(v[field]);
const isVerification = (v: unknown): v is AuditVerification =>
  isObject(v) && typeof v.intact === 'boolean' && Array.isArray(v.breaks);
const isRule = (v: unknown): v is AuditRule => isObject(v) && typeof v.id === 'number';

/** The audit calls of the admin API, through the extension's one seam. */
export function auditApi(api: NgsciApi) {
  return {
    /** the newest `limit` completed reads since `since` (the service pages oldest first) */
    recentReads: async (since: Date, limit = 50): Promise<AuditEvent[]> => {
      const q = new URLSearchParams({ from: since.toISOString(), limit: '1000' });
      const r = await api.request('GET', `/admin/audit?${q}`, listOf<AuditEvent>('events'));
      // a close carries the whole read: who, which file, when, how long, and the size
      return r
        .events!.filter((e) => e.op === 'close')
        .slice(-limit)
        .reverse();
    },
    securityEvents: async (kind?: string, limit = 50): Promise<SecurityEvent[]> => {
      const q = new URLSearchParams({ limit: String(limit), ...(kind ? { kind } : {}) });
      const r = await api.request(
        'GET',
        `/admin/security-events?${q}`,
        listOf<SecurityEvent>('events'),
      );
      return r.events!;
    },
    verify: () => api.request('GET', '/admin/audit/verify', isVerification),
    rules: async (): Promise<AuditRule[]> =>
      (await api.request('GET', '/admin/audit/rules', listOf<AuditRule>('rules'))).rules!,
    addHoneypot: (path: string, stopServer: boolean, note?: string) =>
      api.request('POST', '/admin/audit/rules', isRule, {
        kind: 'honeypot',
        path,
        stopServer,
        ...(note ? { note } : {}),
      }),
    removeRule: (id: number) => api.send('DELETE', `/admin/audit/rules/${id}`),
  };
}

/** One line on the chains: intact, or which event breaks which chain. */
export function chainSummary(v: AuditVerification): string {
  if (v.intact)
    return `Intact: ${v.events} events in ${v.chains} chains verified at ${v.checkedAt.slice(0, 19).replace('T', ' ')} UTC.`;
  const first = v.breaks[0]!;
  return `BROKEN: ${v.breaks.length} of ${v.chains} chains. ${first.message}.`;
}

/** A honeypot path as typed: absolute, a file or a folder ending in `/`. */
export function checkHoneypotPath(raw: string): string {
  const p = raw.trim();
  if (!p.startsWith('/') || p.length < 2)
    throw new Error('give an absolute path inside the dataset, e.g. /data/patients/zz-canary.csv');
  return p;
}

const time = (iso: string) => iso.slice(0, 19).replace('T', ' ');

export class AdminAudit {
  /** the section's element; the admin panel places it once and calls refresh() with its own */
  readonly node: HTMLElement;
  private readonly calls: ReturnType<typeof auditApi>;
  private verification: Part<AuditVerification> = { data: null, error: null };
  private alerts: Part<SecurityEvent[]> = { data: null, error: null };
  private silent: Part<SecurityEvent[]> = { data: null, error: null };
  private reads: Part<AuditEvent[]> = { data: null, error: null };
  private rules: Part<AuditRule[]> = { data: null, error: null };
  private readonly form: HTMLFormElement;
  private readonly message: HTMLElement;
  private readonly body: HTMLElement;

  constructor(api: NgsciApi) {
    this.calls = auditApi(api);
    this.node = h('section', {
      class: 'jp-ngsci-admin-part jp-ngsci-audit',
      'aria-label': 'Audit',
    });
    this.body = h('div', {});
    this.message = h('p', { class: 'jp-ngsci-form-message', role: 'status' });
    // built once, so a refresh never wipes what an admin is typing
    const path = h('input', {
      name: 'honeypotPath',
      'data-focus-key': 'honeypotPath',
      type: 'text',
      placeholder: '/data/patients/zz-canary.csv',
      autocomplete: 'off',
    });
    const stop = h('input', {
      name: 'honeypotStop',
      'data-focus-key': 'honeypotStop',
      type: 'checkbox',
    });
    const note = h('input', {
      name: 'honeypotNote',
      'data-focus-key': 'honeypotNote',
      type: 'text',
      autocomplete: 'off',
    });
    this.form = h(
      'form',
      {
        class: 'jp-ngsci-form',
        'aria-label': 'Add a honeypot',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          let p: string;
          try {
            p = checkHoneypotPath(path.value);
          } catch (err) {
            this.say((err as Error).message, true);
            return;
          }
          void this.act(
            () => this.calls.addHoneypot(p, stop.checked, note.value.trim() || undefined),
            `Honeypot ${p} added: any read of it alerts you${stop.checked ? ' and stops the server' : ''}.`,
            () => {
              path.value = '';
              note.value = '';
              stop.checked = false;
            },
          );
        },
      },
      h('label', {}, 'Path ', path),
      h('label', {}, stop, ' stop the server on a read'),
      h('label', {}, 'Note ', note),
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, 'Add honeypot'),
      this.message,
    );
    this.node.append(h('h2', {}, 'Audit'), this.body);
    this.render();
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('jp-mod-error', error);
  }

  private async act(fn: () => Promise<unknown>, done: string, after?: () => void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.say(err instanceof NgsciApiError ? err.userMessage : String(err), true);
      return;
    }
    after?.();
    await this.refresh();
    this.say(done);
  }

  async refresh(): Promise<void> {
    const day = new Date(Date.now() - 86_400_000);
    [this.verification, this.alerts, this.silent, this.reads, this.rules] = await Promise.all([
      load(this.calls.verify),
      load(() => this.calls.securityEvents(undefined, 30)),
      load(() => this.calls.securityEvents('agent_silent', 20)),
      load(() => this.calls.recentReads(day)),
      load(this.calls.rules),
    ]);
    this.render();
  }

  private render(): void {
    this.body.replaceChildren(
      part(
        'Chain status',
        this.verification,
        (v) => notice(v.intact ? 'info' : 'error', chainSummary(v)),
        { sub: true },
      ),
      part(
        'Alerts',
        this.alerts,
        (list) =>
          list.length
            ? table(
                ['Time', 'Severity', 'Kind', 'User', 'Server', 'What'],
                list.map((e) => [
                  time(e.at),
                  e.severity,
                  e.kind.replace(/_/g, ' '),
                  e.user ?? '—',
                  e.server ?? '—',
                  e.message,
                ]),
                'Alerts',
              )
            : h('p', { class: 'jp-ngsci-hint' }, 'No security events.'),
        { sub: true },
      ),
      part(
        'Silent agents',
        this.silent,
        (list) =>
          list.length
            ? table(
                ['Since', 'User', 'Server', 'Instance'],
                list.map((e) => [time(e.at), e.user ?? '—', e.server ?? '—', e.instanceId ?? '—']),
                'Silent agents',
              )
            : h('p', { class: 'jp-ngsci-hint' }, 'Every running agent is reporting.'),
        { sub: true },
      ),
      part(
        'Recent reads (24 h)',
        this.reads,
        (list) =>
          list.length
            ? table(
                ['Time', 'User', 'Server', 'Op', 'File', 'Bytes (≤)', 'Open for'],
                list.map((e) => [
                  time(e.at),
                  e.user,
                  e.server,
                  e.op,
                  e.path,
                  e.bytes === null ? '—' : String(e.bytes),
                  e.durationMs === null ? '—' : `${(e.durationMs / 1000).toFixed(1)} s`,
                ]),
                'Recent reads',
              )
            : h('p', { class: 'jp-ngsci-hint' }, 'No dataset reads in the last 24 hours.'),
        { sub: true },
      ),
      part(
        'Honeypots',
        this.rules,
        (rules) => {
          const pots = rules.filter((r) => r.kind === 'honeypot');
          return h(
            'div',
            {},
            pots.length
              ? table(
                  ['Path', 'Stops server', 'Note', 'Added by', ''],
                  pots.map((r) => [
                    r.path ?? '—',
                    r.stopServer ? 'yes' : 'no',
                    r.note ?? '',
                    r.createdBy,
                    h(
                      'button',
                      {
                        class: 'jp-mod-styled jp-mod-warn',
                        type: 'button',
                        'aria-label': `Remove honeypot ${r.path ?? r.id}`,
                        onclick: () =>
                          void this.act(
                            () => this.calls.removeRule(r.id),
                            `Honeypot ${r.path ?? r.id} removed.`,
                          ),
                      },
                      'Remove',
                    ),
                  ]),
                  'Honeypots',
                )
              : h(
                  'p',
                  { class: 'jp-ngsci-hint' },
                  'No honeypots: add a canary file no study uses.',
                ),
            this.form,
          );
        },
        { sub: true },
      ),
    );
  }
}
