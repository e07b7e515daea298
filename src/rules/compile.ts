import { StringIndex } from '../core/string-index';
import IPCIDR from 'ip-cidr';
import { CidrSet, CidrTrie } from '../core/cidr-trie';
import { DialPlan, isKnownCountry } from '../core/dial-plan';
import { cidrKey, parseCidr, type ParsedCidr } from '../core/ip';
import { PrefixTrie } from '../core/prefix-trie';
import { compileDefense, type CompiledDefense } from '../defense/compile-defense';
import {
  RulesError,
  type AccountConfig,
  type ForwardMode,
  type GuardConfig,
  type RejectClass,
  type ResponseSpec,
  type RuleFile,
  type RuleProblem,
  type RuleSet,
} from './config-types';
import { compileMonitor, type CompiledMonitor } from '../monitor/thresholds';

/**
 * Turns a validated RuleSet into the lookup structures GuardCore reads per call. Every cost that
 * can be paid once (CIDR parsing, dial-plan regexes, detail strings) is paid here, and every
 * cross-entry problem is collected so an admin sees all of them in one RulesError.
 */

/** Limits with Infinity for "unlimited". */
export interface CompiledLimits {
  readonly callsPerSecond: number;
  readonly callsPerMinute: number;
  readonly concurrentCalls: number;
}

/**
 * The limits sit on the account itself (not in a nested object): the core reads them on every
 * admitted call, and with 100 000 accounts a separate limits object per account is one more
 * cache miss a decision.
 */
export interface CompiledAccount extends CompiledLimits {
  readonly id: string;
  /** Dense 0..n-1 within one CompiledRules (-1 for the unknown-caller account): lets the core keep per-account state in arrays. */
  readonly index: number;
  /** account, else defaults, else true: the high-risk list is the guard's default protection. */
  readonly international: boolean;
  /** null when the account has no allowed_sources (any guard-allowed source will do). */
  readonly allowedSources: CidrSet | null;
  /** High-risk prefixes this account may call anyway; null when none. */
  readonly allowDestinations: PrefixTrie<true> | null;
  readonly dialPlan: DialPlan;
  readonly email?: string;
  /** accounts.yaml `drachtio:`: forwarding mode and call-duration cap of this account, when set. */
  readonly drachtio: CompiledAccountDrachtio | undefined;
}

export interface CompiledAccountDrachtio {
  readonly mode?: ForwardMode;
  readonly maxCallSeconds?: number;
}

export interface HighRiskMatch {
  readonly prefix: string;
  readonly name: string;
  /** Precomputed verdict detail, e.g. "high-risk destination +252 Somalia". */
  readonly detail: string;
}

export interface RejectResponse {
  readonly status: number;
  readonly reason: string;
  readonly retryAfter?: number;
}

export interface CompiledRules {
  /** The guard settings as validated, with defaults filled in. */
  readonly guard: GuardConfig;
  readonly summary: { accounts: number; prefixes: number; cidrs: number };
  /** Guard-wide allowed_sources. */
  readonly allowedSources: CidrSet;
  /** SIP peering: source CIDR -> account. */
  readonly accountBySource: CidrTrie<CompiledAccount>;
  /** Digest username / PAI user / From user -> account. */
  readonly accountByUser: ReadonlyMap<string, CompiledAccount>;
  /** The same as accountByUser, in the table GuardCore.decide reads per call (see StringIndex). */
  readonly userIndex: StringIndex<CompiledAccount>;
  readonly accounts: ReadonlyMap<string, CompiledAccount>;
  /** The synthetic account used when unknown_caller is 'allow': the defaults, no sources. */
  readonly unknownAccount: CompiledAccount;
  readonly highRisk: PrefixTrie<HighRiskMatch>;
  readonly responses: Readonly<Record<RejectClass, RejectResponse>>;
  /**
   * The fraud monitor's thresholds per account (rules/monitor.yaml over built-in defaults).
   * Optional so that hand-built CompiledRules (tests, other front ends) need not provide it;
   * compileRules() always does.
   */
  readonly monitor?: CompiledMonitor;
  /** The attack-source defense's rules (defense.yaml, fingerprints, blocklist, trusted sources). */
  readonly defense: CompiledDefense;
  accountIds(): string[];
  account(id: string): CompiledAccount | undefined;
}

export const UNKNOWN_ACCOUNT_ID = '_unknown';
export const DEFAULT_MAX_CALL_SECONDS = 14_400;

const DEFAULT_RESPONSES: Record<RejectClass, RejectResponse> = {
  source: { status: 403, reason: 'Forbidden' },
  unknown_caller: { status: 403, reason: 'Forbidden' },
  international: { status: 403, reason: 'Forbidden' },
  high_risk: { status: 403, reason: 'Forbidden' },
  invalid_destination: { status: 484, reason: 'Address Incomplete' },
  rate_limit: { status: 503, reason: 'Service Unavailable', retryAfter: 5 },
  // An account under an international toll block (the fraud monitor's or an admin's).
  toll_block: { status: 403, reason: 'International Calls Blocked' },
};

/** Phrases for statuses an admin is likely to pick without writing a reason. */
const REASON_PHRASES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  416: 'Unsupported URI Scheme',
  480: 'Temporarily Unavailable',
  484: 'Address Incomplete',
  486: 'Busy Here',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

const E164_PREFIX = /^\+[0-9]{1,15}$/;

class Problems {
  readonly list: RuleProblem[] = [];
  constructor(private readonly set: RuleSet) {}
  add(file: RuleFile, path: ReadonlyArray<string | number>, message: string): void {
    this.list.push({ at: this.set.where(file, path), message });
  }
  where(file: RuleFile, path: ReadonlyArray<string | number>): string {
    return this.set.where(file, path);
  }
}

/** Validates with ip-cidr (the reference parser), then parses for the trie. */
function readCidr(text: string, problems: Problems, file: RuleFile, path: ReadonlyArray<string | number>): ParsedCidr | null {
  const t = typeof text === 'string' ? text.trim() : '';
  if (!(t.includes('/') ? IPCIDR.isValidCIDR(t) : IPCIDR.isValidAddress(t))) {
    problems.add(file, path, `"${text}" is not a valid IP address or CIDR`);
    return null;
  }
  const parsed = parseCidr(t);
  if (typeof parsed === 'string') {
    problems.add(file, path, `"${text}": ${parsed}`);
    return null;
  }
  return parsed;
}

function fillResponses(overrides: GuardConfig['responses']): Record<RejectClass, RejectResponse> {
  const out = { ...DEFAULT_RESPONSES };
  for (const key of Object.keys(DEFAULT_RESPONSES) as RejectClass[]) {
    const o: ResponseSpec | undefined = overrides?.[key];
    if (!o) continue;
    const base = DEFAULT_RESPONSES[key];
    const reason = o.reason ?? (o.status === base.status ? base.reason : REASON_PHRASES[o.status] ?? 'Rejected');
    const retryAfter = o.retry_after ?? base.retryAfter;
    out[key] = retryAfter === undefined ? { status: o.status, reason } : { status: o.status, reason, retryAfter };
  }
  return out;
}

function toResponseSpec(r: RejectResponse): ResponseSpec {
  return r.retryAfter === undefined ? { status: r.status, reason: r.reason } : { status: r.status, reason: r.reason, retry_after: r.retryAfter };
}

/** One constructor for every account, so they all share a hidden class and the core's reads stay monomorphic. */
function makeAccount(
  id: string,
  index: number,
  international: boolean,
  allowedSources: CidrSet | null,
  allowDestinations: PrefixTrie<true> | null,
  limits: CompiledLimits,
  dialPlan: DialPlan,
  email: string | undefined,
  drachtio: CompiledAccountDrachtio | undefined = undefined,
): CompiledAccount {
  const { callsPerSecond, callsPerMinute, concurrentCalls } = limits;
  return { id, index, international, allowedSources, allowDestinations, callsPerSecond, callsPerMinute, concurrentCalls, dialPlan, email, drachtio };
}

function accountDrachtio(a: AccountConfig): CompiledAccountDrachtio | undefined {
  const d = a.drachtio;
  if (d === undefined || (d.mode === undefined && d.max_call_seconds === undefined)) return undefined;
  return { mode: d.mode, maxCallSeconds: d.max_call_seconds };
}

/** drachtio-server's default admin port (its drachtio.conf.xml <admin port="9022">). */
export const DEFAULT_DRACHTIO_PORT = 9022;

const limit = (v: number | undefined): number => (v === undefined ? Infinity : Math.ceil(v));

export function compileRules(set: RuleSet): CompiledRules {
  const problems = new Problems(set);
  const { guard, accounts: accountsFile } = set;
  const defaults = accountsFile.defaults ?? {};
  let cidrCount = 0;

  const planFor = (country: string, file: RuleFile, path: ReadonlyArray<string | number>): DialPlan | null => {
    const code = String(country).toUpperCase();
    if (!isKnownCountry(code)) {
      problems.add(file, path, `unknown country "${country}" (not an ISO 3166 alpha-2 code libphonenumber knows)`);
      return null;
    }
    return DialPlan.for(code);
  };

  const homePlan = planFor(guard.home_country, 'guard', ['home_country']);
  const defaultPlan = defaults.country !== undefined ? planFor(defaults.country, 'accounts', ['defaults', 'country']) : homePlan;

  const allowedSources = new CidrSet();
  (guard.allowed_sources ?? []).forEach((text, i) => {
    const c = readCidr(text, problems, 'guard', ['allowed_sources', i]);
    if (c) {
      allowedSources.addParsed(c);
      cidrCount++;
    }
  });

  const defaultLimits: CompiledLimits = {
    callsPerSecond: limit(defaults.limits?.calls_per_second),
    callsPerMinute: limit(defaults.limits?.calls_per_minute),
    concurrentCalls: limit(defaults.limits?.concurrent_calls),
  };
  const mergeLimits = (a: AccountConfig): CompiledLimits =>
    a.limits === undefined
      ? defaultLimits
      : {
          callsPerSecond: a.limits.calls_per_second !== undefined ? limit(a.limits.calls_per_second) : defaultLimits.callsPerSecond,
          callsPerMinute: a.limits.calls_per_minute !== undefined ? limit(a.limits.calls_per_minute) : defaultLimits.callsPerMinute,
          concurrentCalls: a.limits.concurrent_calls !== undefined ? limit(a.limits.concurrent_calls) : defaultLimits.concurrentCalls,
        };

  // Accounts often repeat the same office ranges or allowed destinations; share one structure.
  const sharedSourceSets = new Map<string, CidrSet>();
  const sharedDestTries = new Map<string, PrefixTrie<true>>();

  const accounts = new Map<string, CompiledAccount>();
  const accountBySource = new CidrTrie<CompiledAccount>(1024);
  const sourceOwner = new Map<string, { id: string; path: (string | number)[] }>();
  const accountByUser = new Map<string, CompiledAccount>();
  const userOwner = new Map<string, string>();

  for (const [id, a] of Object.entries(accountsFile.accounts ?? {})) {
    const base = ['accounts', id] as const;
    if (id === UNKNOWN_ACCOUNT_ID || id.startsWith(UNKNOWN_ACCOUNT_ID + ':')) {
      problems.add('accounts', base, `account id "${id}" is reserved for unknown callers`);
    }
    const plan = a.country !== undefined ? planFor(a.country, 'accounts', [...base, 'country']) : defaultPlan;

    let accountSources: CidrSet | null = null;
    if (a.allowed_sources !== undefined) {
      const parsed: ParsedCidr[] = [];
      a.allowed_sources.forEach((text, i) => {
        const c = readCidr(text, problems, 'accounts', [...base, 'allowed_sources', i]);
        if (c) parsed.push(c);
      });
      cidrCount += parsed.length;
      const key = parsed.map(cidrKey).sort().join(',');
      accountSources = sharedSourceSets.get(key) ?? null;
      if (accountSources === null) {
        accountSources = new CidrSet();
        for (const c of parsed) accountSources.addParsed(c);
        accountSources.trim();
        sharedSourceSets.set(key, accountSources);
      }
    }

    let allowDestinations: PrefixTrie<true> | null = null;
    if (a.allow_destinations !== undefined && a.allow_destinations.length > 0) {
      const valid: string[] = [];
      a.allow_destinations.forEach((p, i) => {
        if (typeof p === 'string' && E164_PREFIX.test(p)) valid.push(p);
        else problems.add('accounts', [...base, 'allow_destinations', i], `"${p}" is not an E.164 prefix like "+252"`);
      });
      const key = [...valid].sort().join(',');
      allowDestinations = sharedDestTries.get(key) ?? null;
      if (allowDestinations === null) {
        allowDestinations = new PrefixTrie<true>(valid.length * 4);
        for (const p of valid) allowDestinations.insert(p, true);
        allowDestinations.trim();
        sharedDestTries.set(key, allowDestinations);
      }
    }

    const account = makeAccount(
      id,
      accounts.size,
      a.international ?? defaults.international ?? true,
      accountSources,
      allowDestinations,
      mergeLimits(a),
      // An unknown country is already a problem; any plan keeps compiling so all problems surface.
      plan ?? homePlan ?? DialPlan.for('US'),
      a.email,
      accountDrachtio(a),
    );
    accounts.set(id, account);

    (a.sources ?? []).forEach((text, i) => {
      const path = [...base, 'sources', i];
      const c = readCidr(text, problems, 'accounts', path);
      if (!c) return;
      cidrCount++;
      const key = cidrKey(c);
      const owner = sourceOwner.get(key);
      if (owner && owner.id !== id) {
        problems.add('accounts', path, `source ${text} is already given to account "${owner.id}" (${problems.where('accounts', owner.path)})`);
        return;
      }
      if (!owner) {
        sourceOwner.set(key, { id, path });
        accountBySource.insertParsed(c, account);
      }
    });

    (a.users ?? []).forEach((user, i) => {
      const owner = userOwner.get(user);
      if (owner !== undefined && owner !== id) {
        problems.add('accounts', [...base, 'users', i], `user "${user}" is already claimed by account "${owner}"`);
        return;
      }
      userOwner.set(user, id);
      accountByUser.set(user, account);
    });
  }
  accountBySource.trim();
  allowedSources.trim();

  const highRisk = new PrefixTrie<HighRiskMatch>(Math.max(64, set.highRisk.length * 3));
  const prefixAt = new Map<string, number>();
  set.highRisk.forEach((entry, i) => {
    const path = [i, 'prefix'];
    if (typeof entry.prefix !== 'string' || !E164_PREFIX.test(entry.prefix)) {
      problems.add('high-risk', path, `"${entry.prefix}" is not an E.164 prefix like "+252"`);
      return;
    }
    const first = prefixAt.get(entry.prefix);
    if (first !== undefined) {
      problems.add('high-risk', path, `duplicate high-risk prefix ${entry.prefix} (first at ${problems.where('high-risk', [first, 'prefix'])})`);
      return;
    }
    prefixAt.set(entry.prefix, i);
    highRisk.insert(entry.prefix, { prefix: entry.prefix, name: entry.name, detail: `high-risk destination ${entry.prefix} ${entry.name}` });
  });
  highRisk.trim();

  const accountCountry = new Map([...accounts.values()].map((a) => [a.id, a.dialPlan.country]));
  const monitor = compileMonitor(set.monitor, accountCountry, String(guard.home_country).toUpperCase(), (path, message) =>
    problems.add('monitor', path, message),
  );

  if (problems.list.length > 0) throw new RulesError(problems.list);

  const responses = fillResponses(guard.responses);
  const filledGuard: GuardConfig = {
    ...guard,
    home_country: String(guard.home_country).toUpperCase(),
    sip: { ...guard.sip, max_call_seconds: guard.sip.max_call_seconds ?? DEFAULT_MAX_CALL_SECONDS },
    responses: Object.fromEntries(Object.entries(responses).map(([k, r]) => [k, toResponseSpec(r)])) as Record<RejectClass, ResponseSpec>,
    log: { level: 'info', decisions: 'all', ...guard.log },
  };
  if (guard.drachtio !== undefined) {
    const d = guard.drachtio;
    filledGuard.drachtio = {
      ...d,
      ...(d.host !== undefined ? { port: d.port ?? DEFAULT_DRACHTIO_PORT } : { listen_address: d.listen_address ?? '0.0.0.0' }),
      mode: d.mode ?? 'proxy',
    };
  }

  const unknownAccount = makeAccount(UNKNOWN_ACCOUNT_ID, -1, defaults.international ?? true, null, null, defaultLimits, defaultPlan!, undefined);

  return {
    guard: filledGuard,
    summary: { accounts: accounts.size, prefixes: highRisk.size, cidrs: cidrCount },
    allowedSources,
    accountBySource,
    accountByUser,
    userIndex: new StringIndex(accountByUser),
    accounts,
    unknownAccount,
    highRisk,
    responses,
    monitor,
    defense: compileDefense(set),
    ...accountLookups(accounts),
  };
}

/**
 * The lookup closures of CompiledRules, made outside compileRules on purpose: a closure created
 * there would share compileRules' scope, which holds the RuleSet, and so would keep the parsed
 * YAML documents (tens of thousands of nodes with big rule files) alive as long as the rules.
 */
function accountLookups(accounts: ReadonlyMap<string, CompiledAccount>): Pick<CompiledRules, 'accountIds' | 'account'> {
  return {
    accountIds: () => [...accounts.keys()],
    account: (id) => accounts.get(id),
  };
}
