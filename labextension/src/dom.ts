/** A small element builder for the panels (no framework: the panels are a few lists and tables). */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, '').toLowerCase(), v);
    else if (k === 'class') el.className = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
  return el;
}

/** A `label: value` row of a definition list. */
export function row(label: string, value: Child, valueAttrs: Attrs = {}): HTMLElement[] {
  return [h('dt', {}, label), h('dd', valueAttrs, value)];
}

/** A message box in a panel: `info`, `warn` or `error` (role=status or alert). */
export function notice(kind: 'info' | 'warn' | 'error', text: string): HTMLElement {
  return h(
    'div',
    {
      class: `jp-ngsci-notice jp-ngsci-notice-${kind}`,
      role: kind === 'error' ? 'alert' : 'status',
    },
    text,
  );
}
