/**
 * The validated shape of the rule files, as admins write them (snake_case, like the YAML).
 * The zod schemas in rules/schema.ts produce exactly these types; core/compile.ts turns them
 * into the fast lookup structures of CompiledRules. Optional fields are documented in the README.
 */
import type { BlocklistEntry, DefenseFile, Fingerprint } from './defense-schema';

import type { AdminApiConfig, MonitorFile, NotifyConfig } from './monitor-schema';

/** "udp:127.0.0.1:5060", "tcp:[::1]:5060" (TLS comes later). */
export type ListenSpec = string;

export interface ResponseSpec {
  status: number;
  reason?: string;
  /** Seconds, sent as Retry-After (rate-limit answers). */
  retry_after?: number;
}

export type RejectClass =
  | 'source'
  | 'toll_block'
  | 'unknown_caller'
  | 'invalid_destination'
  | 'international'
  | 'high_risk'
  | 'rate_limit';

/** How an admitted INVITE is forwarded by the drachtio front end (see DrachtioConfig). */
export type ForwardMode = 'proxy' | 'b2bua';

/** Maximum call duration, seconds, per destination class (b2bua mode enforces it). */
export interface DurationLimits {
  domestic?: number;
  international?: number;
  /** Calls to a high-risk prefix that the account's allow_destinations let through. */
  high_risk_allowed?: number;
}

/**
 * The drachtio-srf front end: either inbound (TollGuard connects to drachtio-server's admin port,
 * host + port) or outbound (drachtio-server connects to TollGuard, listen), never both.
 */
export interface DrachtioConfig {
  /** Inbound: drachtio-server's admin address. */
  host?: string;
  /** Inbound: drachtio-server's admin port (default 9022). */
  port?: number;
  /** Outbound: the port TollGuard listens on for drachtio-server's connections. */
  listen?: number;
  /** Outbound: the address to listen on (default 0.0.0.0). */
  listen_address?: string;
  /** The shared secret configured in drachtio-server (<admin secret="...">). */
  secret: string;
  /** proxy (default) or b2bua. */
  mode?: ForwardMode;
  max_call_seconds?: DurationLimits;
}

export interface GuardConfig {
  sip: {
    listen: ListenSpec[];
    /** The SIP core: "host:port", "[v6]:port", optionally "tcp:host:port" (default udp). */
    upstream: string;
    /** Socket buffer size for UDP, bytes. */
    udp_buffer_bytes?: number;
    /** UDP I/O: the native recvmmsg/sendmmsg addon (batch), node:dgram, or batch when it loaded (auto, default). */
    udp_io?: 'auto' | 'batch' | 'dgram';
    /** Embedded proxy: new calls get 503 while it is this far behind: event loop or UDP queue (ms; 0 = off; default 100). */
    overload_lag_ms?: number;
    /** Backstop: a concurrent-call slot is freed after this long even if no BYE was seen. */
    max_call_seconds?: number;
    /** Embedded proxy: inbound TCP/TLS connections one source address may hold (default 1000). */
    max_connections_per_source?: number;
  };
  /** ISO 3166 alpha-2 of the dial plan used to read numbers (NZ, US, AU, GB, ...). */
  home_country: string;
  allowed_sources: string[];
  /**
   * The allowed_sources entries written as `{ cidr, trusted: true }`: exempt from the attack-source
   * defense's bans and flood counting. Derived by the schema; absent when none is marked.
   */
  trusted_sources?: string[];
  unknown_caller: 'reject' | 'allow';
  responses?: Partial<Record<RejectClass, ResponseSpec>>;
  /** Present when the guard runs as a drachtio-srf application instead of the embedded proxy. */
  drachtio?: DrachtioConfig;
  log?: {
    level?: 'error' | 'warn' | 'info' | 'debug';
    /** Which decisions get a log line: all (default), rejects only, or none. */
    decisions?: 'all' | 'rejects' | 'none';
  };
  /** Where blocks, bans, password resets and the audit trail live (SQLite file). */
  store?: {
    /** SQLite database file; relative paths are relative to the working directory. Default state/tollguard.db. */
    path?: string;
  };
  /** Where the fraud monitor's emails and webhooks go (rules/monitor-schema.ts). */
  notify?: NotifyConfig;
  /** Loopback HTTP API for password resets, blocks and unblocks (rules/monitor-schema.ts). */
  admin_api?: AdminApiConfig;
}

export interface AccountLimits {
  calls_per_second?: number;
  calls_per_minute?: number;
  concurrent_calls?: number;
}

export interface AccountConfig {
  /** SIP peering: calls from these CIDRs belong to this account. */
  sources?: string[];
  /** Digest usernames or calling numbers (PAI / From user) that identify this account. */
  users?: string[];
  /** When present, the account's calls must also come from inside these CIDRs. */
  allowed_sources?: string[];
  international?: boolean;
  /** High-risk prefixes this account may call anyway, E.164 with '+', e.g. "+252". */
  allow_destinations?: string[];
  limits?: AccountLimits;
  email?: string;
  /** ISO alpha-2; overrides home_country for reading this account's dialled numbers. */
  country?: string;
  /** Per-account overrides of the drachtio front end's forwarding. */
  drachtio?: AccountDrachtio;
}

export interface AccountDrachtio {
  mode?: ForwardMode;
  /** Caps every call of this account (b2bua mode), on top of the destination-class limits. */
  max_call_seconds?: number;
}

export interface AccountDefaults {
  international?: boolean;
  limits?: AccountLimits;
  country?: string;
}

export interface AccountsFile {
  defaults?: AccountDefaults;
  accounts: Record<string, AccountConfig>;
}

export interface HighRiskEntry {
  /** E.164 prefix with '+', digits only after it: "+252", "+1876". */
  prefix: string;
  name: string;
}

export type RuleFile = 'guard' | 'accounts' | 'high-risk' | 'monitor' | 'defense' | 'fingerprints' | 'blocklist';

/** Everything read from one rules directory, validated but not yet compiled. */
export interface RuleSet {
  dir: string;
  guard: GuardConfig;
  accounts: AccountsFile;
  highRisk: HighRiskEntry[];
  /** rules/monitor.yaml; undefined when the file is absent (built-in thresholds apply). */
  monitor?: MonitorFile;
  /** rules/defense.yaml, when present (absent: the attack-source defense is off). */
  defense?: DefenseFile;
  /** rules/scanner-fingerprints.yaml, when present. */
  fingerprints?: Fingerprint[];
  /** rules/blocklist.txt, when present. */
  blocklist?: BlocklistEntry[];
  /**
   * Where a value came from, for errors found after validation (duplicates, unknown country):
   * returns "rules/accounts.yaml:12" for ('accounts', ['accounts', 'bob', 'users', 1]).
   */
  where(file: RuleFile, path: ReadonlyArray<string | number>): string;
}

/** One problem in the rule files, with the place that caused it. */
export interface RuleProblem {
  /** "rules/accounts.yaml:12" (file path as given, 1-based line). */
  at: string;
  message: string;
}

/** Thrown by loading or compiling: carries every problem found, not just the first. */
export class RulesError extends Error {
  constructor(readonly problems: RuleProblem[]) {
    super(problems.map((p) => `${p.at}: ${p.message}`).join('\n'));
    this.name = 'RulesError';
  }
}
