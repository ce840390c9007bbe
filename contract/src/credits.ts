/**
 * Cloud credit grants: what admins record (an amount per cloud, valid between two UTC days), how
 * far usage has drawn each down, the organisation's statement per cloud and month (list cost,
 * credits applied, net), alerts about grants that will go to waste or run out, and where a launch
 * that names no cloud is placed and why.
 */
import { z } from 'zod';
import { MicrosInt as Micros, SizeIdString as SizeId } from './money.js';
import { Month } from './billing.js';

/** The clouds a grant can be for: the hub's own machine (`local`) bills nobody. */
export const CreditCloud = z.enum(['aws', 'gcp', 'azure']).meta({ id: 'CreditCloud' });
export type CreditCloud = z.infer<typeof CreditCloud>;

/** A UTC calendar day, YYYY-MM-DD, that exists (2027-02-30 does not). */
export const Day = z
  .string()
  .regex(/^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'a day as YYYY-MM-DD')
  // zod runs this after a failed pattern too: an unparsable text must fail here, not throw
  .refine((d) => {
    const t = new Date(`${d}T00:00:00Z`);
    return !Number.isNaN(t.getTime()) && t.toISOString().slice(0, 10) === d;
  }, 'no such day')
  .meta({ id: 'Day', example: '2027-03-31' });
export type Day = z.infer<typeof Day>;

export const CreditGrantInput = z
  .object({
    cloud: CreditCloud,
    amountMicros: Micros.min(1)
      .max(1e15)
      .meta({ description: 'the grant in integer micro-dollars ($50,000 is 50000000000)' }),
    startsOn: Day.meta({ description: 'first UTC day whose usage the grant covers' }),
    expiresOn: Day.meta({
      description:
        'last UTC day whose usage the grant covers (inclusive); unused credit is lost after it',
    }),
    note: z.string().trim().max(500).optional(),
  })
  .strict()
  .refine((g) => g.startsOn <= g.expiresOn, {
    message: 'expiresOn must not be before startsOn',
    path: ['expiresOn'],
  })
  .meta({ id: 'CreditGrantInput' });
export type CreditGrantInput = z.input<typeof CreditGrantInput>;

export const CreditGrantState = z
  .enum(['upcoming', 'active', 'used_up', 'expired'])
  .meta({ id: 'CreditGrantState' });
export type CreditGrantState = z.infer<typeof CreditGrantState>;

export const CreditGrant = z
  .object({
    id: z.number().int(),
    cloud: CreditCloud,
    amountMicros: Micros,
    startsOn: Day,
    expiresOn: Day,
    note: z.string().nullable(),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
    usedMicros: Micros.meta({
      description: 'drawn down by usage so far (derived from the ledger)',
    }),
    remainingMicros: Micros.meta({ description: 'amount - used; what is left, even once expired' }),
    state: CreditGrantState,
  })
  .meta({ id: 'CreditGrant' });
export type CreditGrant = z.infer<typeof CreditGrant>;

export const CreditAlertKind = z
  .enum(['expires_unused', 'runs_out'])
  .meta({ id: 'CreditAlertKind' });
export type CreditAlertKind = z.infer<typeof CreditAlertKind>;

/** A grant that will expire with credit left, or be used up soon, at the cloud's current burn. */
export const CreditAlert = z
  .object({
    grantId: z.number().int(),
    cloud: CreditCloud,
    kind: CreditAlertKind,
    on: Day.meta({ description: 'the day it expires, or the day it runs out at the current burn' }),
    remainingMicros: Micros,
    /** µ$ a day the cloud used over the burn window (list price) */
    burnMicrosPerDay: Micros,
    /** expires_unused: what will be left on the expiry day at the current burn */
    unusedMicros: Micros.optional(),
    message: z.string(),
  })
  .meta({ id: 'CreditAlert' });
export type CreditAlert = z.infer<typeof CreditAlert>;

/**
 * The admin's credit settings. `lowerCharges`: the part of each usage row's list cost that grants
 * cover is not charged to the researcher either (decided as the meter writes the row; rows written
 * before keep their charge); off (the default), researchers pay list price times their plan.
 */
export const CreditSettings = z
  .object({
    lowerCharges: z.boolean(),
    updatedBy: z.string().nullable().optional(),
    updatedAt: z.iso.datetime().nullable().optional(),
  })
  .meta({ id: 'CreditSettings' });
export type CreditSettings = z.infer<typeof CreditSettings>;

export const CreditSettingsInput = z
  .object({ lowerCharges: z.boolean() })
  .strict()
  .meta({ id: 'CreditSettingsInput' });
export type CreditSettingsInput = z.infer<typeof CreditSettingsInput>;

export const CreditGrantList = z
  .object({
    asOf: z.iso.datetime(),
    grants: z.array(CreditGrant),
    alerts: z.array(CreditAlert),
    /** the admin's choice that credits also lower researchers' charges */
    lowerCharges: z.boolean().optional(),
  })
  .meta({ id: 'CreditGrantList' });
export type CreditGrantList = z.infer<typeof CreditGrantList>;

/** One cloud's month: what it cost at list price, how much credit covered, what is left to pay. */
export const CreditCloudMonth = z
  .object({
    cloud: CreditCloud,
    listMicros: Micros,
    creditsMicros: Micros,
    netMicros: Micros,
  })
  .meta({ id: 'CreditCloudMonth' });
export type CreditCloudMonth = z.infer<typeof CreditCloudMonth>;

export const CreditStatement = z
  .object({
    month: Month,
    clouds: z.array(CreditCloudMonth),
    listMicros: Micros,
    creditsMicros: Micros,
    netMicros: Micros,
  })
  .meta({ id: 'CreditStatement' });
export type CreditStatement = z.infer<typeof CreditStatement>;

/** Where a size would run on one cloud, and what that costs the organisation after credits. */
export const PlacementOption = z
  .object({
    cloud: CreditCloud.or(z.literal('local')),
    region: z.string(),
    ratePerHourMicros: Micros,
    /** list price of the expected run */
    expectedMicros: Micros,
    /** the part of it the cloud's remaining credits cover */
    coveredMicros: Micros,
    /** expectedMicros - coveredMicros: what the organisation pays */
    netMicros: Micros,
    /** the earliest expiry among the grants that would cover it */
    creditsUntil: Day.nullable(),
  })
  .meta({ id: 'PlacementOption' });
export type PlacementOption = z.infer<typeof PlacementOption>;

/** `GET /placement?size=`: where a launch that names no cloud goes, and why. */
export const Placement = z
  .object({
    size: SizeId,
    cloud: CreditCloud.or(z.literal('local')),
    region: z.string(),
    reason: z.string().meta({ example: 'on gcp: covered by credits until 2027-03-31' }),
    expectedHours: z.number(),
    options: z.array(PlacementOption).meta({ description: 'every cloud considered, best first' }),
  })
  .meta({ id: 'Placement' });
export type Placement = z.infer<typeof Placement>;

/** A grant to try in an estimate (`credits` of a scenario): it covers the scenario's usage on its cloud. */
export const EstimateCredit = z
  .object({
    cloud: CreditCloud,
    amountMicros: Micros.min(1).max(1e15),
    expiresOn: Day.optional().meta({
      description: 'last day it covers; default: the whole scenario',
    }),
    note: z.string().trim().max(200).optional(),
  })
  .strict()
  .meta({ id: 'EstimateCredit' });
export type EstimateCredit = z.input<typeof EstimateCredit>;

/** What credits do to an estimate: each grant's share, and the total after them. */
export const EstimateCredits = z
  .object({
    grants: z.array(
      z.object({
        cloud: CreditCloud,
        source: z.enum(['scenario', 'recorded']),
        amountMicros: Micros.meta({ description: 'the grant (recorded: what is left of it now)' }),
        expiresOn: Day.nullable(),
        note: z.string().nullable(),
        appliedMicros: Micros,
      }),
    ),
    appliedMicros: Micros,
    /** totalMicros - appliedMicros: what the scenario costs after credits */
    netTotalMicros: Micros,
    summary: z.string().meta({
      example: 'with the $50,000.00 AWS grant this scenario costs $12,345.67 (list $62,345.67)',
    }),
  })
  .meta({ id: 'EstimateCredits' });
export type EstimateCredits = z.infer<typeof EstimateCredits>;
