/** The notice a user gets when one of their servers fails, whatever noticed it. */
import type { Notifier } from '../notify/types.js';
import type { Logger } from '../logger.js';
import type { InstanceRow } from './store.js';

export async function noticeFailure(
  notifier: Notifier | undefined,
  logger: Logger,
  row: Pick<InstanceRow, 'id' | 'userName' | 'serverName' | 'sizeId'>,
  what: 'start' | 'run',
  message: string,
): Promise<void> {
  if (!notifier) return;
  try {
    await notifier.send({
      user: row.userName,
      kind: 'failure',
      level: 'error',
      title:
        what === 'start'
          ? `Server '${row.serverName}' (${row.sizeId}) failed to start`
          : `Server '${row.serverName}' (${row.sizeId}) stopped unexpectedly`,
      body: message,
      instanceId: row.id,
      server: row.serverName,
      dedupeKey: `failure:${row.id}`,
    });
  } catch (err) {
    // a notice that cannot be delivered must not change what happened to the instance
    logger.warn({ err, instance: row.id }, 'could not send the failure notice');
  }
}
