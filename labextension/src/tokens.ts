/** The services ngsci's plugins share: the model token and the command ids. */
import { Token } from '@lumino/coreutils';
import type { NgsciModel } from './model';

export type INgsciModel = NgsciModel;

export const INgsciModel = new Token<INgsciModel>(
  'ngsci:model',
  'The ngsci state of this page: the user, their instances, usage, budget and statements.',
);

/** The ids of ngsci's commands (a const object rather than JupyterLab's usual namespace: the repo's lint forbids namespaces). */
export const CommandIDs = {
  openSidebar: 'ngsci:open-sidebar',
  openUsage: 'ngsci:open-usage',
  openBilling: 'ngsci:open-billing',
  resize: 'ngsci:resize',
  stop: 'ngsci:stop',
  keepRunning: 'ngsci:keep-running',
  openAdmin: 'ngsci:open-admin',
} as const;
