/**
 * The admin panel's building blocks: a part (a titled section that says plainly when its data
 * failed to load or the service lacks the endpoint), tables, a budget meter, and the forms kit —
 * forms built once and kept, so a refresh never wipes what an admin is typing, each with a
 * message line next to its button.
 */
import { NgsciApiError } from '../api';
import { h, notice } from '../dom';

export type Part<T> = { data: T | null; error: NgsciApiError | null };
export const empty = <T>(): Part<T> => ({ data: null, error: null });

/** Loads one part's data; any failure becomes the part's error. */
export async function load<T>(fn: () => Promise<T>): Promise<Part<T>> {
  try {
    return { data: await fn(), error: null };
  } catch (err) {
    return {
      data: null,
      error: err instanceof NgsciApiError ? err : new NgsciApiError(0, 'bad_response', String(err)),
    };
  }
}

/** A titled part of the panel; `sub` makes it a sub-part (h3 in a div) inside a larger section. */
export function part<T>(
  title: string,
  p: Part<T>,
  body: (d: T) => HTMLElement,
  opts: { sub?: boolean } = {},
): HTMLElement {
  const content = p.error
    ? notice(
        p.error.code === 'endpoint_missing' ? 'info' : 'error',
        p.error.code === 'endpoint_missing'
          ? `${title}: not available from this ngsci service yet.`
          : p.error.userMessage,
      )
    : p.data !== null
      ? body(p.data)
      : notice('info', 'Loading…');
  return opts.sub
    ? h('div', { class: 'jp-ngsci-audit-part', 'aria-label': title }, h('h3', {}, title), content)
    : h(
        'section',
        { class: 'jp-ngsci-admin-part', 'aria-label': title },
        h('h2', {}, title),
        content,
      );
}

export function table(
  head: string[],
  rows: (string | HTMLElement)[][],
  label: string,
): HTMLElement {
  return h(
    'table',
    { class: 'jp-ngsci-table', 'aria-label': label },
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

export function meter(percent: number, label: string): HTMLElement {
  const level = percent >= 100 ? 'over' : percent >= 80 ? 'high' : percent >= 50 ? 'mid' : 'low';
  return h(
    'div',
    {
      class: `jp-ngsci-budget-bar jp-ngsci-budget-bar-small jp-mod-${level}`,
      role: 'meter',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.min(100, percent),
      'aria-label': label,
      title: `${percent}%`,
    },
    h('div', { class: 'jp-ngsci-budget-fill', style: `width:${Math.min(100, percent)}%` }),
  );
}

export type Say = (text: string, error?: boolean) => void;

/** Forms kept across refreshes, their message lines, and the way an admin change runs. */
export class FormKit {
  private readonly forms: Record<string, { form: HTMLFormElement; message: HTMLElement }> = {};

  constructor(
    private readonly root: HTMLElement,
    private readonly refresh: () => Promise<void>,
  ) {}

  has(key: string): HTMLFormElement | null {
    return this.forms[key]?.form ?? null;
  }

  /** A form built once and kept, with its message line (role=status) next to its button. */
  keptForm(
    key: string,
    title: string,
    fields: HTMLElement[],
    submit: string,
    onSubmit: (say: Say) => Promise<void>,
  ): HTMLFormElement {
    const kept = this.forms[key];
    if (kept) return kept.form;
    const message = h('p', { class: 'jp-ngsci-form-message', role: 'status' });
    const form = h(
      'form',
      { class: 'jp-ngsci-quota-form', 'aria-label': title },
      h('h3', {}, title),
      ...fields,
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, submit),
      message,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void onSubmit(this.sayer(key));
    });
    this.forms[key] = { form, message };
    return form;
  }

  sayer(key: string): Say {
    return (text, error = false) => {
      const m = this.forms[key]?.message;
      if (!m) return;
      m.textContent = text;
      m.classList.toggle('jp-mod-error', error);
    };
  }

  /** Runs one admin change, refreshes, and says how it went next to form `key`. */
  async act(key: string, fn: () => Promise<unknown>, done: string): Promise<void> {
    const say = this.sayer(key);
    try {
      await fn();
    } catch (err) {
      say(err instanceof NgsciApiError ? err.userMessage : String(err), true);
      return;
    }
    await this.refresh();
    say(done);
    // a Remove or Delete button pressed from the keyboard is gone now: keep focus in the panel,
    // on the form whose message says what happened
    if (!this.root.contains(document.activeElement))
      this.forms[key]?.form.querySelector<HTMLElement>('input, select')?.focus();
  }
}
