/**
 * The attack-source defense's rule files: rules/defense.yaml (thresholds, never_ban, APIBAN),
 * rules/scanner-fingerprints.yaml (patterns of scanning tools) and rules/blocklist.txt (one IP or
 * CIDR a line). All three are optional: without defense.yaml the defense is off, which keeps old
 * rule directories loading exactly as before; the shipped rules/ has all three.
 *
 * The YAML files go through the same loader as the other rule files (file:line errors, unknown
 * keys with "did you mean"); blocklist.txt is plain text and is read here, line by line.
 */
import { z } from 'zod';
import { checkCidr, cidr, positiveInt, strict } from './schema-kit';
import type { RuleProblem } from './config-types';

/** SIP methods are tokens in capitals; "default" covers every method not named. */
const METHOD = /^[A-Z]+$/;

const floodLimits = z
  .record(z.string(), positiveInt(), { error: 'expected a mapping from method (or default) to requests per window' })
  .superRefine((m, ctx) => {
    for (const k of Object.keys(m)) {
      if (k !== 'default' && !METHOD.test(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `"${k}" is not a SIP method in capitals (INVITE, REGISTER, ...) or "default"`, input: k });
      }
    }
    if (m.default === undefined) ctx.addIssue({ code: 'custom', message: 'missing "default": the limit for methods not named', input: m });
  });

const windowed = (what: string) => strict({ max: positiveInt(), window_seconds: positiveInt() }, what);

export const defenseSchema = strict(
  {
    /** Never banned, never flood-counted (a carrier's own peers, monitoring). */
    never_ban: z.array(cidr(), { error: 'expected a list of CIDRs' }).default([]),
    bans: strict(
      {
        /** Ban length for the 1st, 2nd, ... offence of one address; the last repeats. */
        durations_seconds: z.array(positiveInt(), { error: 'expected a list of durations in seconds' }).min(1, { error: 'expected at least one duration' }).default([300, 3600, 86400]),
        /** How long an offence counts towards the next one's escalation. */
        remember_seconds: positiveInt().default(7 * 86400),
      },
      'a mapping with durations_seconds and remember_seconds',
    ).default({ durations_seconds: [300, 3600, 86400], remember_seconds: 7 * 86400 }),
    scanners: strict({ ban_seconds: positiveInt().default(3600) }, 'a mapping with ban_seconds').default({ ban_seconds: 3600 }),
    flood: strict(
      {
        window_seconds: positiveInt().default(2),
        /** Requests per source and method within the window before the source is banned. */
        limits: floodLimits.default({ default: 100 }),
        /** Sources tracked at once (least recently seen are forgotten first): bounds memory. */
        max_sources: positiveInt().default(100_000),
      },
      'a mapping with window_seconds, limits and max_sources',
    ).default({ window_seconds: 2, limits: { default: 100 }, max_sources: 100_000 }),
    auth_failures: strict(
      {
        /** Refused credentials (401/407 to a request that carried some, 403) from one source. */
        per_source: windowed('a mapping with max and window_seconds').default({ max: 10, window_seconds: 300 }),
        /** 404 answers (unknown user / extension) to one source: enumeration. */
        not_found: windowed('a mapping with max and window_seconds').default({ max: 10, window_seconds: 300 }),
        /** Refused credentials for one username from at least `sources` different addresses: credential stuffing. */
        per_user: strict({ max: positiveInt(), window_seconds: positiveInt(), sources: positiveInt() }, 'a mapping with max, window_seconds and sources').default({
          max: 20,
          window_seconds: 3600,
          sources: 3,
        }),
      },
      'a mapping with per_source, not_found and per_user',
    ).default({
      per_source: { max: 10, window_seconds: 300 },
      not_found: { max: 10, window_seconds: 300 },
      per_user: { max: 20, window_seconds: 3600, sources: 3 },
    }),
    apiban: strict(
      {
        /** APIBAN's banned endpoint, e.g. https://apiban.org/api/KEY/banned; the ID is appended. */
        url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://apiban.org/api/KEY/banned' }),
        interval_seconds: positiveInt().default(300),
        timeout_seconds: positiveInt().default(10),
        /** Addresses learnt from the feed are dropped for this long after they were last listed. */
        keep_seconds: positiveInt().default(7 * 86400),
      },
      'a mapping with url and optionally interval_seconds, timeout_seconds, keep_seconds',
    ).optional(),
  },
  'a mapping with never_ban, bans, scanners, flood, auth_failures and apiban',
);

export type DefenseFile = z.output<typeof defenseSchema>;

/** One scanner pattern: a header and either a case-insensitive substring or a regular expression. */
const fingerprint = strict(
  {
    name: z.string({ error: 'expected a name such as sipvicious' }).min(1),
    header: z.string({ error: 'expected a header name such as User-Agent' }).regex(/^[A-Za-z0-9-]+$/, { error: 'expected a header name such as User-Agent' }),
    contains: z.string().min(1, { error: 'expected a non-empty text' }).optional(),
    regex: z
      .string()
      .superRefine((s, ctx) => {
        try {
          new RegExp(s, 'i');
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}`, input: s });
        }
      })
      .optional(),
  },
  'a mapping like { name: sipvicious, header: User-Agent, contains: friendly-scanner }',
).superRefine((f, ctx) => {
  if ((f.contains === undefined) === (f.regex === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'give exactly one of contains or regex', input: f });
  }
});

export const fingerprintsSchema = z.array(fingerprint, { error: 'expected a list of fingerprints like { name, header, contains | regex }' });
export type Fingerprint = z.output<typeof fingerprint>;

/** One blocklist entry: the CIDR (host routes as /32 or /128) and its line. */
export interface BlocklistEntry {
  cidr: string;
  line: number;
}

/**
 * blocklist.txt: one IP or CIDR a line; '#' starts a comment (whole line or after the entry);
 * blank lines are ignored. Every bad line is a problem "file:line: message".
 */
export function parseBlocklist(text: string, display: string, problems: RuleProblem[]): BlocklistEntry[] {
  const out: BlocklistEntry[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const hash = raw.indexOf('#');
    const entry = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (entry === '') return;
    if (/\s/.test(entry)) {
      problems.push({ at: `${display}:${line}`, message: `expected one IP or CIDR a line, got "${entry}"` });
      return;
    }
    const r = checkCidr(entry);
    if (!r.ok) {
      problems.push({ at: `${display}:${line}`, message: `"${entry}": ${r.message}` });
      return;
    }
    const key = r.cidr.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push({ at: `${display}:${line}`, message: `duplicate entry ${entry} (first at line ${first})` });
      return;
    }
    seen.set(key, line);
    out.push({ cidr: r.cidr, line });
  });
  return out;
}
