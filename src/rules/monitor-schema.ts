/**
 * rules/monitor.yaml (the fraud monitor's thresholds) and guard.yaml's `notify` section (where
 * its emails and webhooks go). Kept apart from schema.ts so the monitor's rules grow without
 * touching the core rule files. Every threshold has a warning and a critical level; either may be
 * left out to switch that level off. `defaults` apply to every account; `accounts.<id>` overrides
 * any of them field by field.
 */
import { z } from 'zod';
import { strict } from './schema-kit';

const COUNT = 'expected a positive whole number';
const count = () => z.number({ error: COUNT }).int({ error: COUNT }).positive({ error: COUNT });
const POSITIVE = 'expected a positive number';
const positive = () => z.number({ error: POSITIVE }).positive({ error: POSITIVE });

/** A level: a number, or false to switch a level the defaults set off for this file or account. */
const level = (make: () => z.ZodNumber) => z.union([make(), z.literal(false)], { error: `${POSITIVE}, or false to switch the level off` }).optional();

/**
 * Warning and critical set in the same mapping: critical must not be below warning, or the
 * warning could never be seen. (A warning inherited from the defaults that ends up above an
 * account's critical level simply never fires: lowering critical alone is a legitimate edit.)
 */
function orderedLevels(l: { warning?: number | false; critical?: number | false }, ctx: z.core.$RefinementCtx<unknown>): void {
  if (typeof l.warning === 'number' && typeof l.critical === 'number' && l.critical < l.warning) {
    ctx.addIssue({ code: 'custom', path: ['critical'], message: `critical (${l.critical}) must not be below warning (${l.warning})`, input: l.critical });
  }
}

const levels = (make: () => z.ZodNumber) =>
  strict({ warning: level(make), critical: level(make) }, 'a mapping with warning and/or critical').superRefine(orderedLevels);

const TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
const clock = () => z.string({ error: 'expected a time of day such as "22:00"' }).regex(TIME, { error: 'expected a time of day HH:MM such as "22:00"' });

function timezoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `unknown time zone "${tz}" (expected an IANA name such as Pacific/Auckland)`;
  }
}

const timezone = () =>
  z.string({ error: 'expected an IANA time zone such as Pacific/Auckland' }).superRefine((s, ctx) => {
    const p = timezoneProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: p, input: s });
  });

/** All fields optional: the same shape serves `defaults` (merged over built-in defaults) and each account. */
export const monitorSettingsSchema = strict(
  {
    timezone: timezone().optional(),
    intl_per_minute: levels(count).optional(),
    intl_per_hour: levels(count).optional(),
    rate_spike: strict(
      { min_calls: count().optional(), warning: level(positive), critical: level(positive) },
      'a mapping with min_calls, warning and/or critical (multiples of the baseline)',
    ).superRefine(orderedLevels).optional(),
    concurrent_intl: levels(count).optional(),
    same_destination: strict(
      { ignore_last_digits: z.number().int().min(0).max(6).optional(), warning: level(count), critical: level(count) },
      'a mapping with ignore_last_digits, warning and/or critical',
    ).superRefine(orderedLevels).optional(),
    distinct_destinations: strict(
      { window_minutes: count().optional(), warning: level(count), critical: level(count) },
      'a mapping with window_minutes, warning and/or critical',
    ).superRefine(orderedLevels).optional(),
    high_risk_attempts: strict(
      { window_minutes: count().optional(), warning: level(count), critical: level(count) },
      'a mapping with window_minutes, warning and/or critical',
    ).superRefine(orderedLevels).optional(),
    new_country: strict(
      { lookback_days: count().optional(), window_minutes: count().optional(), warning: level(count), critical: level(count) },
      'a mapping with lookback_days, window_minutes, warning and/or critical',
    ).superRefine(orderedLevels).optional(),
    dormant: strict(
      { idle_days: count().optional(), level: z.enum(['warning', 'critical', 'off'], { error: 'expected warning, critical or off' }).optional() },
      'a mapping with idle_days and level',
    ).optional(),
    off_hours: strict(
      {
        night_from: clock().optional(),
        night_to: clock().optional(),
        weekends: z.boolean({ error: 'expected true or false' }).optional(),
        window_minutes: count().optional(),
        warning: level(count),
        critical: level(count),
      },
      'a mapping with night_from, night_to, weekends, window_minutes, warning and/or critical',
    ).superRefine(orderedLevels).optional(),
    long_call: strict(
      { international_minutes: levels(positive).optional(), high_risk_allowed_minutes: levels(positive).optional() },
      'a mapping with international_minutes and/or high_risk_allowed_minutes',
    ).optional(),
    /** The same warning for the same account and rule is sent at most once per this many minutes. */
    repeat_warning_minutes: count().optional(),
  },
  'a mapping of monitor thresholds',
);

export const monitorFileSchema = strict(
  {
    defaults: monitorSettingsSchema.optional(),
    accounts: z.record(z.string(), monitorSettingsSchema, { error: 'expected a mapping from account id to thresholds' }).optional(),
  },
  'a mapping with defaults and/or accounts',
);

export type MonitorSettings = z.output<typeof monitorSettingsSchema>;
export type MonitorFile = z.output<typeof monitorFileSchema>;

// ---------------------------------------------------------------------------------------------
// guard.yaml: notify

export const notifySchema = strict(
  {
    smtp: strict(
      {
        host: z.string({ error: 'expected a host name or IP' }).min(1),
        port: z.number({ error: 'expected a TCP port' }).int().min(1).max(65535).optional(),
        /** true: TLS from the start (port 465); false: plain, upgraded by STARTTLS when offered. */
        secure: z.boolean({ error: 'expected true or false' }).optional(),
        user: z.string().optional(),
        /** Read from this environment variable, so the password is not in a rule file. */
        password_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { error: 'expected an environment variable name such as SMTP_PASSWORD' }).optional(),
      },
      'a mapping with host and optionally port, secure, user, password_env',
    ).optional(),
    from: z.email({ error: 'expected the sender address, e.g. noc@carrier.example' }).optional(),
    noc: z.email({ error: 'expected the NOC address, e.g. noc@carrier.example' }).optional(),
    webhook_url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    /** Sending attempts before a message is given up (it stays in the outbox, shown by status). */
    max_attempts: count().optional(),
    /** Support contact named in the emails. */
    support: z.string().min(1).optional(),
  },
  'a mapping with smtp, from, noc, webhook_url, max_attempts, support',
);

export type NotifyConfig = z.output<typeof notifySchema>;

// ---------------------------------------------------------------------------------------------
// guard.yaml: admin_api

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|localhost):(\d{1,5})$/;

/**
 * The admin HTTP API (password resets, blocks, unblocks, status) listens on loopback only: it is
 * for the carrier's own provisioning scripts on the same host, not for the network.
 */
export const adminApiSchema = strict(
  {
    listen: z
      .string({ error: 'expected a loopback address and port such as 127.0.0.1:8089' })
      .regex(LOOPBACK, { error: 'expected a loopback address and port such as 127.0.0.1:8089 (the admin API is not exposed beyond this host)' }),
    /** When set, requests must carry "Authorization: Bearer <value of this environment variable>". */
    token_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, { error: 'expected an environment variable name such as TOLLGUARD_ADMIN_TOKEN' }).optional(),
  },
  'a mapping with listen and optionally token_env',
);

export type AdminApiConfig = z.output<typeof adminApiSchema>;
