/**
 * Zod schemas for the three rule files. They output exactly the types of config-types.ts (checked
 * at compile time at the bottom of this file) and carry admin-facing messages: every message says
 * what was expected; load.ts adds the path, the file:line and ", got <value>".
 *
 * Decisions, documented here because admins meet them as error messages:
 * - A bare IP where a CIDR is expected means that one host: it is accepted and turned into
 *   "IP/32" or "IP/128", so every CIDR string in a RuleSet contains a '/'. A CIDR with host bits
 *   set ("10.1.2.3/24") is an error, because the admin meant either the host or the network and
 *   guessing wrong widens or narrows who may call.
 * - `users` entries are strings. load.ts turns an unquoted number into its digits only when YAML
 *   read it losslessly (6495550111); a leading 0 or + that YAML dropped is an error asking for
 *   quotes. High-risk prefixes written unquoted (+252 reads as the number 252) are errors here.
 * - Strict objects everywhere: a misspelt key would otherwise silently leave a limit unset.
 */
import { z } from 'zod';
import { isSupportedCountry } from 'libphonenumber-js';
import type {
  AccountConfig,
  AccountDefaults,
  AccountDrachtio,
  AccountLimits,
  AccountsFile,
  DrachtioConfig,
  GuardConfig,
  HighRiskEntry,
  ResponseSpec,
} from './config-types';
import { adminApiSchema, notifySchema } from './monitor-schema';
import { checkCidr, cidr, isIPv4, isIPv6, positiveInt, strict } from './schema-kit';

export { checkCidr };

// ---------------------------------------------------------------------------------------------
// Scalars


const boolean = () => z.boolean({ error: 'expected true or false' });

const nonEmptyString = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}, not an empty string` });

const list = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item, { error: `expected a list of ${what}` });

/**
 * Rejects duplicates inside one list. Runs even when other entries are invalid (`when`), so one
 * load reports everything. `norm` decides what counts as the same: CIDRs compare case-blind
 * (IPv6 hex), usernames do not (digest usernames are case-sensitive).
 */
function noDuplicates(what: string, norm: (s: string) => string = (s) => s) {
  return [
    (arr: unknown[], ctx: z.core.$RefinementCtx<unknown[]>) => {
      const seen = new Map<string, number>();
      arr.forEach((v, i) => {
        if (typeof v !== 'string') return;
        const key = norm(v);
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${what} "${v}" (already listed at index ${first})`, input: v });
      });
    },
    { when: (p: { value: unknown }) => Array.isArray(p.value) },
  ] as const;
}

// ---------------------------------------------------------------------------------------------
// Addresses

const cidrList = () => list(cidr(), 'CIDRs').superRefine(...noDuplicates('CIDR', (s) => s.toLowerCase()));

/**
 * An allowed_sources entry: a CIDR as always, or `{ cidr: CIDR, trusted: true }` for a source the
 * attack-source defense must never ban or flood-count (a carrier's peer, a big shared NAT). The
 * plain form is unchanged, so existing guard.yaml files load as before.
 */
const allowedSource = () =>
  z.unknown().transform((v, ctx): { cidr: string; trusted: boolean } => {
    let text: unknown = v;
    let trusted = false;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const extra = Object.keys(o).filter((k) => k !== 'cidr' && k !== 'trusted');
      if (extra.length > 0 || typeof o.cidr !== 'string' || (o.trusted !== undefined && typeof o.trusted !== 'boolean')) {
        ctx.addIssue({ code: 'custom', message: 'expected a CIDR, or a mapping like { cidr: 198.51.100.7, trusted: true }', input: v });
        return z.NEVER;
      }
      text = o.cidr;
      trusted = o.trusted === true;
    }
    if (typeof text !== 'string') {
      ctx.addIssue({ code: 'custom', message: 'expected an IP address or CIDR such as 192.0.2.0/24', input: v });
      return z.NEVER;
    }
    const r = checkCidr(text);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.message, input: text });
      return z.NEVER;
    }
    return { cidr: r.cidr, trusted };
  });

const allowedSourceList = () =>
  list(allowedSource(), 'CIDRs').superRefine((arr, ctx) => {
    const seen = new Map<string, number>();
    arr.forEach((e, i) => {
      const key = e.cidr.toLowerCase();
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else ctx.addIssue({ code: 'custom', path: [i], message: `duplicate CIDR "${e.cidr}" (already listed at index ${first})`, input: e.cidr });
    });
  });

const PORT = /^[1-9][0-9]{0,4}$/;
function portProblem(p: string): string | undefined {
  if (!PORT.test(p) || Number(p) > 65535) return `expected a port number 1-65535 after the last colon`;
  return undefined;
}

/** Splits "HOST:PORT" / "[V6]:PORT"; the caller has already removed any transport prefix. */
function splitHostPort(s: string): { host: string; port: string; bracketed: boolean } | undefined {
  const b = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
  if (b) return { host: b[1], port: b[2], bracketed: true };
  if (s.startsWith('[')) return undefined;
  const i = s.lastIndexOf(':');
  if (i < 0) return undefined;
  return { host: s.slice(0, i), port: s.slice(i + 1), bracketed: false };
}

const HOSTNAME_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
function isHostname(h: string): boolean {
  const labels = h.replace(/\.$/, '').split('.');
  if (h.length > 253 || !labels.every((l) => HOSTNAME_LABEL.test(l))) return false;
  // An all-digit last label is an IPv4 attempt, never a DNS name ("300.1.1.1").
  return !/^[0-9]+$/.test(labels[labels.length - 1]);
}

/** Returns an error message, or undefined when the listen spec is good. */
export function listenProblem(spec: string): string | undefined {
  const m = /^([A-Za-z]+):(.*)$/.exec(spec);
  const example = 'expected transport:IP:port such as udp:0.0.0.0:5060, tcp:127.0.0.1:5060 or tcp:[::1]:5060';
  if (!m || isIPv4(m[1]) || !/^(udp|tcp|tls|ws|wss|sctp)$/i.test(m[1])) {
    return `${example} (the udp: or tcp: prefix is required)`;
  }
  const transport = m[1].toLowerCase();
  if (transport !== m[1]) return `write the transport in lower case: ${transport}:${m[2]}`;
  if (transport === 'tls') return 'tls: listeners are not supported yet (reserved for a later version); use udp: or tcp:';
  if (transport !== 'udp' && transport !== 'tcp') return `transport ${transport}: is not supported; use udp: or tcp:`;
  const hp = splitHostPort(m[2]);
  if (!hp) return `${example} (the port is required)`;
  if (!hp.bracketed && hp.host.includes(':')) {
    return `write an IPv6 address in brackets: ${transport}:[${hp.host}]:${hp.port}`;
  }
  if (hp.bracketed ? !isIPv6(hp.host) : !isIPv4(hp.host)) {
    return 'expected an IP address to listen on, not a host name (0.0.0.0 or [::] for all interfaces)';
  }
  return portProblem(hp.port);
}

/** Returns an error message, or undefined when the upstream is good. */
export function upstreamProblem(spec: string): string | undefined {
  const example = 'expected host:port such as 127.0.0.1:5080, [2001:db8::1]:5060 or tcp:sip-core.example:5060';
  let rest = spec;
  const m = /^([A-Za-z]+):(.*)$/.exec(spec);
  if (m && /^(udp|tcp|tls|ws|wss|sctp)$/i.test(m[1]) && !/^[0-9]+$/.test(m[2])) {
    const transport = m[1].toLowerCase();
    if (transport === 'tls') return 'tls: upstreams are not supported yet (reserved for a later version); use udp: or tcp:';
    if (transport !== 'udp' && transport !== 'tcp') return `transport ${transport}: is not supported; use udp: or tcp:`;
    if (transport !== m[1]) return `write the transport in lower case: ${transport}:${m[2]}`;
    rest = m[2];
  }
  const hp = splitHostPort(rest);
  if (!hp || hp.port === '') return `${example} (the port is required)`;
  if (!hp.bracketed && hp.host.includes(':')) return `write an IPv6 address in brackets: [${hp.host}]:${hp.port}`;
  if (hp.bracketed ? !isIPv6(hp.host) : !(isIPv4(hp.host) || isHostname(hp.host))) {
    return 'expected a host name or IP address before the port';
  }
  return portProblem(hp.port);
}

const listenSpec = () =>
  z.string({ error: 'expected a listen spec such as udp:0.0.0.0:5060' }).superRefine((s, ctx) => {
    const p = listenProblem(s.trim());
    if (p) ctx.addIssue({ code: 'custom', message: p, input: s });
  });

const upstream = () =>
  z.string({ error: 'expected host:port such as 127.0.0.1:5080' }).superRefine((s, ctx) => {
    const p = upstreamProblem(s.trim());
    if (p) ctx.addIssue({ code: 'custom', message: p, input: s });
  });

// ---------------------------------------------------------------------------------------------
// Phone-number things

const COUNTRY_ALIASES: Record<string, string> = { UK: 'GB', EL: 'GR' };

export function countryProblem(code: string): string | undefined {
  if (isSupportedCountry(code as Parameters<typeof isSupportedCountry>[0])) return undefined;
  const upper = code.toUpperCase();
  if (upper !== code && isSupportedCountry(upper as Parameters<typeof isSupportedCountry>[0])) {
    return `write the country code in capitals: ${upper}`;
  }
  if (COUNTRY_ALIASES[upper]) return `expected an ISO 3166 alpha-2 country code: use ${COUNTRY_ALIASES[upper]}, not "${code}"`;
  return 'expected a two-letter ISO 3166 country code with a known dial plan, such as NZ, AU, US or GB';
}

const country = () =>
  z.string({ error: 'expected a two-letter ISO 3166 country code such as NZ' }).superRefine((s, ctx) => {
    const p = countryProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: p, input: s });
  });

const E164_PREFIX = /^\+[0-9]{1,15}$/;

const prefix = () =>
  z
    .string({
      error: (iss) =>
        typeof iss.input === 'number'
          ? `write the prefix in quotes with its plus sign, e.g. "+${iss.input}": unquoted, YAML reads +${iss.input} as the number ${iss.input}`
          : 'expected an E.164 prefix in quotes, such as "+252"',
    })
    .regex(E164_PREFIX, { error: 'expected an E.164 prefix: "+" then 1 to 15 digits, in quotes, such as "+252"' });

/**
 * A digest username or calling number. Whitespace and control characters cannot occur in either,
 * and a stray one would make the entry match nothing without any other sign.
 */
const user = () =>
  z
    .string({ error: 'expected a username or a calling number in quotes, such as "6495550111"' })
    .min(1, { error: 'expected a username or calling number, not an empty string' })
    .regex(/^[^\s\x00-\x1f\x7f]+$/, { error: 'expected a username or calling number without spaces' });

const email = () => z.email({ error: 'expected an email address such as voip-admin@example.com' });

// ---------------------------------------------------------------------------------------------
// guard.yaml

const responseSpec = strict(
  {
    status: z
      .number({ error: 'expected a SIP status code 400-699' })
      .int({ error: 'expected a SIP status code 400-699' })
      .min(400, { error: 'expected a SIP status code 400-699 (a rejection must be a failure response)' })
      .max(699, { error: 'expected a SIP status code 400-699' }),
    // A reason phrase ends up in the status line, so CR/LF would let a rule file inject headers.
    reason: z
      .string({ error: 'expected a reason phrase such as "Forbidden"' })
      .regex(/^[^\x00-\x1f\x7f]+$/, { error: 'expected a one-line reason phrase without control characters' })
      .optional(),
    retry_after: positiveInt().optional(),
  },
  'a mapping with status, and optionally reason and retry_after',
);

const forwardMode = () => z.enum(['proxy', 'b2bua'], { error: 'expected proxy or b2bua' });

const PORT_NUMBER = 'expected a port number 1-65535';
const portNumber = () =>
  z.number({ error: PORT_NUMBER }).int({ error: PORT_NUMBER }).min(1, { error: PORT_NUMBER }).max(65535, { error: PORT_NUMBER });

/** drachtio-server's admin address: an IP or a host name (a compose service name such as "drachtio"). */
const drachtioHost = () =>
  z.string({ error: 'expected the host name or IP address of drachtio-server' }).superRefine((s, ctx) => {
    const h = s.trim();
    if (!(isIPv4(h) || isIPv6(h) || isHostname(h))) {
      ctx.addIssue({ code: 'custom', message: 'expected the host name or IP address of drachtio-server (no port: write it in port)', input: s });
    }
  });

const listenAddress = () =>
  z.string({ error: 'expected an IP address to listen on, such as 0.0.0.0' }).superRefine((s, ctx) => {
    if (!(isIPv4(s.trim()) || isIPv6(s.trim()))) {
      ctx.addIssue({ code: 'custom', message: 'expected an IP address to listen on (0.0.0.0 or :: for all interfaces)', input: s });
    }
  });

const durationLimits = strict(
  {
    domestic: positiveInt().optional(),
    international: positiveInt().optional(),
    high_risk_allowed: positiveInt().optional(),
  },
  'a mapping with domestic, international and/or high_risk_allowed (seconds)',
);

export const drachtioSchema = strict(
  {
    host: drachtioHost().optional(),
    port: portNumber().optional(),
    listen: portNumber().optional(),
    listen_address: listenAddress().optional(),
    secret: z
      .string({ error: 'expected the shared secret of drachtio-server' })
      .min(1, { error: 'expected the shared secret of drachtio-server, not an empty string' })
      // The secret goes on the wire protocol's first line ("authenticate|SECRET|tags"), so it may
      // not hold the protocol's separator or line breaks.
      .regex(/^[^|\s]+$/, { error: 'expected a secret without spaces, line breaks or "|"' }),
    mode: forwardMode().optional(),
    max_call_seconds: durationLimits.optional(),
  },
  'a mapping with host and port (inbound) or listen (outbound), and secret',
).superRefine((d, ctx) => {
  // Inbound and outbound are exclusive: drachtio-srf's WireProtocol asserts it cannot be both.
  if (d.host !== undefined && d.listen !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['listen'], message: 'choose one connection style: host (TollGuard connects to drachtio-server) or listen (drachtio-server connects to TollGuard), not both', input: d.listen });
  } else if (d.host === undefined && d.listen === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected host (and port) to connect to drachtio-server, or listen for drachtio-server to connect to TollGuard', input: d });
  }
  if (d.port !== undefined && d.host === undefined) {
    ctx.addIssue({ code: 'custom', path: ['port'], message: 'port is drachtio-server\'s admin port and needs host; for outbound connections use listen', input: d.port });
  }
  if (d.listen_address !== undefined && d.listen === undefined) {
    ctx.addIssue({ code: 'custom', path: ['listen_address'], message: 'listen_address needs listen (the port)', input: d.listen_address });
  }
});

export const guardSchema = strict(
  {
    sip: strict(
      {
        listen: list(listenSpec(), 'listen specs such as udp:0.0.0.0:5060')
          .min(1, { error: 'expected at least one listen spec such as udp:0.0.0.0:5060' })
          .superRefine(...noDuplicates('listen spec')),
        upstream: upstream(),
        udp_buffer_bytes: positiveInt().optional(),
        udp_io: z.enum(['auto', 'batch', 'dgram'], { error: 'expected auto, batch or dgram' }).optional(),
        overload_lag_ms: z.number({ error: 'expected milliseconds (0 turns overload shedding off)' }).int({ error: 'expected whole milliseconds' }).min(0, { error: 'expected 0 or more milliseconds' }).optional(),
        max_call_seconds: positiveInt().optional(),
        max_connections_per_source: positiveInt().optional(),
      },
      'a mapping with listen and upstream',
    ),
    home_country: country(),
    allowed_sources: allowedSourceList().min(1, {
      error: 'expected at least one CIDR: an empty list would reject every call (0.0.0.0/0 and ::/0 allow all)',
    }),
    unknown_caller: z.enum(['reject', 'allow'], { error: 'expected reject or allow' }).default('reject'),
    responses: strict(
      {
        source: responseSpec.optional(),
        unknown_caller: responseSpec.optional(),
        invalid_destination: responseSpec.optional(),
        international: responseSpec.optional(),
        high_risk: responseSpec.optional(),
        rate_limit: responseSpec.optional(),
        toll_block: responseSpec.optional(),
      },
      'a mapping from reject class to response',
    ).optional(),
    drachtio: drachtioSchema.optional(),
    log: strict(
      {
        level: z.enum(['error', 'warn', 'info', 'debug'], { error: 'expected error, warn, info or debug' }).optional(),
        decisions: z.enum(['all', 'rejects', 'none'], { error: 'expected all, rejects or none' }).optional(),
      },
      'a mapping with level and/or decisions',
    ).optional(),
    store: strict(
      {
        path: z.string({ error: 'expected a file path such as state/tollguard.db' }).min(1, { error: 'expected a file path such as state/tollguard.db' }).optional(),
      },
      'a mapping with path',
    ).optional(),
    notify: notifySchema.optional(),
    admin_api: adminApiSchema.optional(),
  },
  'a mapping with sip, home_country, allowed_sources and unknown_caller',
).transform(({ allowed_sources, ...rest }): GuardConfig => {
  // Trusted entries are allowed sources too; the defense reads them as trusted_sources.
  const trusted = allowed_sources.filter((e) => e.trusted).map((e) => e.cidr);
  const out: GuardConfig = { ...rest, allowed_sources: allowed_sources.map((e) => e.cidr) };
  if (trusted.length > 0) out.trusted_sources = trusted;
  return out;
});

// ---------------------------------------------------------------------------------------------
// accounts.yaml

const limitsSchema = strict(
  {
    calls_per_second: positiveInt().optional(),
    calls_per_minute: positiveInt().optional(),
    concurrent_calls: positiveInt().optional(),
  },
  'a mapping with calls_per_second, calls_per_minute and/or concurrent_calls',
);

const accountSchema = strict(
  {
    sources: cidrList().optional(),
    users: list(user(), 'usernames or calling numbers').superRefine(...noDuplicates('user')).optional(),
    allowed_sources: cidrList().optional(),
    international: boolean().optional(),
    allow_destinations: list(prefix(), 'E.164 prefixes such as "+252"').superRefine(...noDuplicates('prefix')).optional(),
    limits: limitsSchema.optional(),
    email: email().optional(),
    country: country().optional(),
    drachtio: strict(
      { mode: forwardMode().optional(), max_call_seconds: positiveInt().optional() },
      'a mapping with mode and/or max_call_seconds',
    ).optional(),
  },
  'a mapping of account settings (sources, users, limits, ...)',
).superRefine((a, ctx) => {
  if ((a.sources?.length ?? 0) === 0 && (a.users?.length ?? 0) === 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'account has neither sources nor users, so no call can ever be attributed to it',
      input: a,
    });
  }
});

const ACCOUNT_ID = /^[A-Za-z0-9_.-]+$/;

export function accountIdProblem(id: string): string | undefined {
  if (id.startsWith('_')) return `account id "${id}" is reserved: ids starting with "_" are for the guard's own use`;
  if (!ACCOUNT_ID.test(id)) return `account id "${id}" may only contain letters, digits, "_", "." and "-"`;
  return undefined;
}

export const accountsSchema = strict(
  {
    defaults: strict(
      {
        international: boolean().optional(),
        limits: limitsSchema.optional(),
        country: country().optional(),
      },
      'a mapping with international, limits and/or country',
    ).optional(),
    accounts: z
      .record(z.string(), accountSchema, { error: 'expected a mapping from account id to account settings' })
      .superRefine(
        (accounts, ctx) => {
          for (const id of Object.keys(accounts)) {
            const p = accountIdProblem(id);
            if (p) ctx.addIssue({ code: 'custom', path: [id], message: p, input: id });
          }
        },
        // Ids are checked even when some account's settings are invalid, so one load shows all.
        { when: (p) => typeof p.value === 'object' && p.value !== null && !Array.isArray(p.value) },
      ),
  },
  'a mapping with accounts (and optionally defaults)',
);

// ---------------------------------------------------------------------------------------------
// high-risk-destinations.yaml

const highRiskEntry = strict(
  {
    prefix: prefix(),
    name: nonEmptyString('a name such as Somalia'),
  },
  'a mapping like { prefix: "+252", name: Somalia }',
);

export const highRiskSchema = list(highRiskEntry, 'entries like { prefix: "+252", name: Somalia }').superRefine(
  (entries, ctx) => {
    const seen = new Map<string, number>();
    entries.forEach((e, i) => {
      const p = typeof e === 'object' && e !== null ? (e as { prefix?: unknown }).prefix : undefined;
      if (typeof p !== 'string') return;
      const first = seen.get(p);
      if (first === undefined) seen.set(p, i);
      else ctx.addIssue({ code: 'custom', path: [i, 'prefix'], message: `duplicate prefix "${p}" (already listed at index ${first})`, input: p });
    });
  },
  { when: (p) => Array.isArray(p.value) },
);

// ---------------------------------------------------------------------------------------------
// The schemas output exactly the contract types; a drift on either side fails the type-check.

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

export type SchemaMatchesContract = [
  Assert<Equals<z.output<typeof guardSchema>, GuardConfig>>,
  Assert<Equals<z.output<typeof accountsSchema>, AccountsFile>>,
  Assert<Equals<z.output<typeof accountSchema>, AccountConfig>>,
  Assert<Equals<z.output<typeof limitsSchema>, AccountLimits>>,
  Assert<Equals<NonNullable<z.output<typeof accountsSchema>['defaults']>, AccountDefaults>>,
  Assert<Equals<z.output<typeof responseSpec>, ResponseSpec>>,
  Assert<Equals<z.output<typeof drachtioSchema>, DrachtioConfig>>,
  Assert<Equals<NonNullable<AccountConfig['drachtio']>, AccountDrachtio>>,
  Assert<Equals<z.output<typeof highRiskSchema>, HighRiskEntry[]>>,
];
