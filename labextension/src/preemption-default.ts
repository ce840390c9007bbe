/**
 * A researcher's own spot preemption default (GET/PUT /me/preemption, hub-service
 * routes/preemption.ts), without any DOM: the answer's check, what the sidebar's select and
 * checkbox show, what a change sends, and the sentence that says what applies and whose it is.
 * The control itself is widgets/preemption.ts; the save at a spot notice, notices.ts.
 */
export type OnPreemption = 'on-demand' | 'spot' | 'stop';

/** What GET/PUT /me/preemption answer. */
export interface PreemptionDefault {
  user: string;
  /** the user's own default; null: none (the admin's applies) */
  chosen: OnPreemption | null;
  adminDefault: OnPreemption;
  effective: OnPreemption;
  source: 'user' | 'admin';
  /** at a spot notice the page also saves each notebook's kernel variables (older services: absent) */
  keepState?: boolean;
  updatedAt: string | null;
}

const CHOICES: readonly OnPreemption[] = ['on-demand', 'spot', 'stop'];
const isChoice = (v: unknown): v is OnPreemption => CHOICES.includes(v as OnPreemption);

export function isPreemptionDefault(v: unknown): v is PreemptionDefault {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    (o.chosen === null || isChoice(o.chosen)) &&
    isChoice(o.adminDefault) &&
    isChoice(o.effective) &&
    (o.source === 'user' || o.source === 'admin') &&
    (o.keepState === undefined || typeof o.keepState === 'boolean')
  );
}

/** The select's value for "the organisation's default" (no choice of one's own). */
export const ORGANISATION = 'default';

export const CHOICE_LABEL: Record<OnPreemption, string> = {
  'on-demand': 'relaunch on-demand',
  spot: 'relaunch spot',
  stop: 'stop',
};

/** The select's options, in order: value and label; the organisation's names what it is. */
export function selectOptions(d: PreemptionDefault | null): { value: string; label: string }[] {
  return [
    ...CHOICES.map((c) => ({ value: c, label: capital(CHOICE_LABEL[c]) })),
    {
      value: ORGANISATION,
      label: d ? `Organisation default (${CHOICE_LABEL[d.adminDefault]})` : 'Organisation default',
    },
  ];
}

/** What the select shows for an answer. */
export function selectValue(d: PreemptionDefault): string {
  return d.chosen ?? ORGANISATION;
}

/** The body of the PUT for a change of the select or of the checkbox. */
export function changeBody(
  change: { select: string } | { keepState: boolean },
): { onPreemption: OnPreemption | null } | { keepState: boolean } {
  if ('keepState' in change) return { keepState: change.keepState };
  if (change.select === ORGANISATION) return { onPreemption: null };
  if (!isChoice(change.select))
    throw new Error(
      `"${change.select}" is not a choice: relaunch on-demand, relaunch spot or stop`,
    );
  return { onPreemption: change.select };
}

/** The line under the control: what applies and where it comes from. */
export function appliesText(d: PreemptionDefault): string {
  const whose = d.source === 'user' ? 'your choice' : "your organisation's default";
  return `Applies to spot launches that do not choose: ${CHOICE_LABEL[d.effective]} (${whose}).`;
}

/** What the page says after a save. */
export function savedText(d: PreemptionDefault): string {
  return (
    `Saved: on spot preemption, ${CHOICE_LABEL[d.effective]}` +
    (d.source === 'admin' ? " (your organisation's default)" : '') +
    (d.keepState ? "; notebooks' variables are saved at a spot notice." : '.')
  );
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
