/** The services ngsci's plugins share: the model token and the command ids. */
import { Token } from '@lumino/coreutils';
import type { NgsciModel } from './model';

export type INgsciModel = NgsciModel;

export const INgsciModel = new Token<INgsciModel>(
  'ngsci:model',
  'The ngsci state of this page: the user, their instances, usage, budget and statements.',
);

export namespace CommandIDs {
  export const openSidebar = 'ngsci:open-sidebar';
  export const openUsage = 'ngsci:open-usage';
  export const openBilling = 'ngsci:open-billing';
  export const resize = 'ngsci:resize';
  export const stop = 'ngsci:stop';
  export const keepRunning = 'ngsci:keep-running';
  export const openAdmin = 'ngsci:open-admin';
}
