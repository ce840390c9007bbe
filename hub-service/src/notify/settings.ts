/**
 * The settings of notifications that limit abuse: how many notices one user may send themselves
 * an hour through `POST /notify`. Parsed with the rest of the configuration (config.ts spreads
 * this shape into its own); every setting has a default, so a config without them is limited
 * the same way. docs/notifications.md describes each.
 */
import { z } from 'zod';

export const NotifySettingsSchema = z.object({
  /** notices one user may send through POST /notify (`%ngsci notify`) in an hour; 0: no limit */
  NGSCI_NOTIFY_PER_HOUR: z.coerce.number().int().min(0).max(1_000_000).default(30),
});

export type NotifySettings = z.infer<typeof NotifySettingsSchema>;

/** The settings from a parsed configuration, or their defaults where it does not carry them. */
export function notifySettings(config: object): NotifySettings {
  return NotifySettingsSchema.parse(config);
}
