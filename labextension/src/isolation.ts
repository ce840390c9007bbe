/**
 * What the admin panel says about how instances are isolated from each other and from the
 * service: the local provisioner's mode (from GET /me) and the limit of the instance agent on
 * local machines, in the words of docs/security.md.
 */
import type { Me } from '@ngsci/contract';

export interface IsolationNote {
  level: 'warning' | 'info';
  text: string;
}

const AGENT_LIMIT =
  'On local instances the agent runs as the same account as the notebook, so a user can read ' +
  "their own instance's agent credential and forge or withhold its reports (never another " +
  "instance's); killing the agent raises an 'agent silent' alert. On cloud VMs the agent runs as " +
  'root and its credential is out of the notebook user’s reach.';

export function isolationNotes(local: Me['localIsolation']): IsolationNote[] {
  if (!local) return [];
  const mode =
    local.mode === 'users'
      ? {
          level: 'info' as const,
          text: 'Local instances: each user runs as their own system account (NGSCI_LOCAL_ISOLATION=users).',
        }
      : local.sharedDemo
        ? {
            level: 'warning' as const,
            text:
              "Local instances share one system account: every user can read every other user's " +
              "files and the service's secrets. Demo only; not for sensitive data " +
              '(NGSCI_LOCAL_SHARED_DEMO).',
          }
        : {
            level: 'info' as const,
            text:
              'Local instances: one user only (one shared system account). Set ' +
              'NGSCI_LOCAL_ISOLATION=users to give each user their own account.',
          };
  return [mode, { level: 'info', text: AGENT_LIMIT }];
}
