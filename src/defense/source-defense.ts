/**
 * The attack-source defense: decides which source addresses are shut out, and shuts them out.
 *
 * Front-end-neutral: it sees addresses, methods, a header reader and the core's answers, never a
 * proxy's internals, so the embedded proxy and the drachtio front end call the same object.
 *
 *  - dropSource(address): before any parsing. Active bans and the APIBAN feed are one hash lookup
 *    each, blocklist.txt one CIDR-trie walk; a hit is dropped silently (nothing is reflected).
 *  - screen(method, address, header): after parsing, for every request method. Scanner
 *    fingerprints and flood density; either bans the source and drops the request.
 *  - answered(...): the core's final answers. Refused credentials and 404s per source ban the
 *    source; refused credentials for one username from many sources raise an account event.
 *
 * Sources inside never_ban or a trusted allowed_sources entry are exempt from all of it, and a
 * ban only ever covers the one offending address.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'winston';
import { LRUCache } from 'lru-cache';
import type { Ban, BanReason, BanStore } from '../store/ban-store';
import { LogThrottle } from '../sip/log-throttle';
import { AuthWatch } from './auth-watch';
import { matchFingerprint, type CompiledDefense } from './compile-defense';
import { FloodDetector } from './flood-detector';

export interface AnswerSeen {
  method: string;
  status: number;
  address: string;
  authUser?: string;
  toUser?: string;
  fromUser?: string;
  userAgent?: string;
}

export interface CallSeen {
  address: string;
  authUser?: string;
  account?: string;
  allowed: boolean;
  international: boolean;
  dialled: string;
}

/** An account whose password is being guessed from many sources. */
export interface CredentialStuffingEvent {
  user: string;
  failures: number;
  sources: string[];
  at: number;
}

/** A stuffed account that then logged in from a new source and placed an international call. */
export interface CompromisedEvent {
  user: string;
  account?: string;
  source: string;
  dialled: string;
  evidence: { failures: number; failingSources: string[]; flaggedAt: number };
  at: number;
}

export interface SourceDefenseEvents {
  banned: [ban: Ban];
  credential_stuffing: [e: CredentialStuffingEvent];
  compromised: [e: CompromisedEvent];
}

const PRUNE_EVERY_MS = 60_000;

export class SourceDefense extends EventEmitter<SourceDefenseEvents> {
  private rules: CompiledDefense;
  private readonly bans = new Map<string, Ban>();
  private feed: ReadonlySet<string> = new Set();
  private flood: FloodDetector;
  private auth: AuthWatch;
  private readonly throttle = new LogThrottle(50, 1000);
  /** Usernames under credential stuffing, with the evidence. */
  private readonly stuffed = new LRUCache<string, CredentialStuffingEvent>({ max: 10_000 });
  /** Sources each username has authenticated from successfully (to tell a new one). */
  private readonly knownGood = new LRUCache<string, Set<string>>({ max: 100_000 });
  /** Stuffed usernames that just logged in from a new source. */
  private readonly suspects = new LRUCache<string, { source: string; at: number }>({ max: 10_000 });
  /** Messages dropped before parsing (bans, feed, blocklist): for the benchmark and stats. */
  dropped = 0;
  private lastPrune = 0;

  constructor(
    rules: CompiledDefense,
    private readonly store: BanStore,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.rules = rules;
    this.flood = floodFor(rules);
    this.auth = authFor(rules);
    this.loadBans();
    this.liftExemptBans();
  }

  get enabled(): boolean {
    return this.rules.enabled;
  }

  /** New rules: counters carry over unless their thresholds changed. */
  swapRules(next: CompiledDefense): void {
    const prev = this.rules.settings;
    this.rules = next;
    if (JSON.stringify(prev.flood) !== JSON.stringify(next.settings.flood)) this.flood = floodFor(next);
    if (JSON.stringify(prev.auth_failures) !== JSON.stringify(next.settings.auth_failures)) this.auth = authFor(next);
    this.liftExemptBans();
  }

  /**
   * An admin who adds a banned address to never_ban (or marks its range trusted) means "let it
   * in": its ban is lifted, in the store too, so the exemption is true of bans made before it.
   */
  private liftExemptBans(): void {
    const exempt = this.rules.exempt;
    if (this.bans.size === 0 || exempt.size === 0) return;
    const now = this.now();
    for (const address of [...this.bans.keys()]) {
      if (!exempt.has(address)) continue;
      try {
        this.store.lift(address, 'rules: never_ban or trusted', now);
      } catch (err) {
        this.log.error({ message: 'cannot record the lifted ban in the store; lifted in memory', address, error: String(err) });
      }
      this.bans.delete(address);
      this.flood.forget(address);
      this.auth.forget(address);
      this.log.info({ message: 'ban lifted', address, why: 'the source is exempt now (never_ban or trusted)' });
    }
  }

  /** The APIBAN feed's current list (replaced whole, so a reader never sees half an update). */
  setFeed(addresses: ReadonlySet<string>): void {
    this.feed = addresses;
  }

  // ---------------------------------------------------------------------------------------------
  // Hot path

  /** Before parsing: true drops the message silently. One or two hash lookups and a trie walk. */
  dropSource(address: string): boolean {
    if (!this.rules.enabled) return false;
    const ban = this.bans.get(address);
    if (ban !== undefined) {
      if (ban.expiresAt > this.now()) return this.countDrop();
      this.bans.delete(address);
      this.log.info({ message: 'ban expired', address, reason: ban.reason, appliedAt: new Date(ban.appliedAt).toISOString() });
    }
    if (this.feed.size !== 0 && this.feed.has(address)) return this.listedDrop(address);
    if (this.rules.blocklistSize !== 0 && this.rules.blocklist.lookup(address) !== undefined) return this.listedDrop(address);
    return false;
  }

  /** A listed source (APIBAN, blocklist.txt) is dropped unless never_ban or trusted covers it: exempt wins. */
  private listedDrop(address: string): boolean {
    if (this.rules.exempt.has(address)) return false;
    return this.countDrop();
  }

  /**
   * After parsing, every request method: scanner fingerprints, then flood density. 'drop' or null.
   * `arrivedAt` (epoch ms) is when the request reached the host, if the front end knows: density
   * is counted at arrival, not at processing, so a backlog read in one go after a stall is not a
   * flood (a customer at a steady 10 requests/s was banned after a 4.5 s pause).
   */
  screen(method: string, address: string, header: (name: string) => string | undefined, arrivedAt?: number): 'drop' | null {
    const rules = this.rules;
    if (!rules.enabled || rules.exempt.has(address)) return null;
    if (rules.fingerprintCount !== 0) {
      const fp = matchFingerprint(rules.fingerprints, header);
      if (fp !== undefined) {
        this.ban(address, 'scanner', `scanner fingerprint "${fp.name}" in ${fp.header}`, {
          fingerprint: fp.name,
          header: fp.header,
          value: fp.value.slice(0, 200),
          method,
          userAgent: header('user-agent')?.slice(0, 200),
        });
        return 'drop';
      }
    }
    const hit = this.flood.count(address, method, arrivedAt ?? this.now());
    if (hit !== undefined) {
      this.ban(address, 'flood', `${hit.count} ${hit.method} in ${hit.windowSeconds} s (limit ${hit.limit})`, {
        ...hit,
        userAgent: header('user-agent')?.slice(0, 200),
      });
      return 'drop';
    }
    return null;
  }

  /** The core's final answer to a customer's request. */
  answered(e: AnswerSeen): void {
    const rules = this.rules;
    if (!rules.enabled) return;
    const now = this.now();
    const exempt = rules.exempt.has(e.address);
    const refused = e.authUser !== undefined && (e.status === 401 || e.status === 407 || e.status === 403);
    if (refused) {
      const user = e.authUser!;
      const stuffing = this.auth.refusedForUser(user, e.address, now);
      if (stuffing !== undefined) this.flagStuffing({ ...stuffing, at: now });
      if (!exempt) {
        const hit = this.auth.refused(e.address, user, e.userAgent, now);
        if (hit !== undefined) {
          this.ban(e.address, 'auth_failures', `${hit.count} refused credentials in ${hit.limit.windowSeconds} s (limit ${hit.limit.max})`, {
            count: hit.count,
            users: hit.users,
            userAgent: hit.userAgent,
            lastStatus: e.status,
            method: e.method,
          });
        }
      }
      return;
    }
    if (e.status === 404 && !exempt) {
      const user = e.toUser ?? e.fromUser;
      const hit = this.auth.notFoundAnswer(e.address, user, e.userAgent, now);
      if (hit !== undefined) {
        this.ban(e.address, 'not_found', `${hit.count} unknown users or extensions (404) in ${hit.limit.windowSeconds} s (limit ${hit.limit.max})`, {
          count: hit.count,
          users: hit.users,
          userAgent: hit.userAgent,
          method: e.method,
        });
      }
      return;
    }
    if (e.status >= 200 && e.status < 300 && e.authUser !== undefined) this.authenticated(e.authUser, e.address, now);
  }

  /** An INVITE decision: a stuffed account calling abroad from its new source is compromised. */
  callDecided(c: CallSeen): void {
    if (!c.allowed || !c.international || c.authUser === undefined || this.suspects.size === 0) return;
    const s = this.suspects.get(c.authUser);
    if (s === undefined || s.source !== c.address) return;
    const flagged = this.stuffed.get(c.authUser);
    this.suspects.delete(c.authUser);
    const e: CompromisedEvent = {
      user: c.authUser,
      account: c.account,
      source: c.address,
      dialled: c.dialled,
      evidence: { failures: flagged?.failures ?? 0, failingSources: flagged?.sources ?? [], flaggedAt: flagged?.at ?? 0 },
      at: this.now(),
    };
    this.log.error({ message: 'account compromised: credential stuffing, then a login from a new source calling abroad', ...e });
    this.safeEmit('compromised', e);
  }

  // ---------------------------------------------------------------------------------------------
  // Bans

  /** Bans in force, newest first. */
  activeBans(): Ban[] {
    const now = this.now();
    return [...this.bans.values()].filter((b) => b.expiresAt > now).sort((a, b) => b.appliedAt - a.appliedAt);
  }

  isBanned(address: string): boolean {
    const b = this.bans.get(address);
    return b !== undefined && b.expiresAt > this.now();
  }

  /**
   * Picks up bans added or lifted by another process (the CLI); cheap when nothing changed. Also
   * forgets expired bans of sources that never came back, so the map only holds live bans.
   */
  syncFromStore(): void {
    const now = this.now();
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      for (const [address, b] of this.bans) if (b.expiresAt <= now) this.bans.delete(address);
    }
    if (!this.store.changedElsewhere()) return;
    const before = new Set(this.bans.keys());
    this.loadBans();
    for (const address of before) {
      if (this.bans.has(address)) continue;
      // Lifted: start its counters from zero, or the next request would ban it again at once.
      this.flood.forget(address);
      this.auth.forget(address);
      this.log.info({ message: 'ban lifted', address });
    }
  }

  ban(address: string, reason: BanReason, detail: string, evidence: Record<string, unknown>): Ban | undefined {
    const now = this.now();
    if (this.rules.exempt.has(address)) {
      const t = this.throttle.take(`exempt:${address}`);
      if (t.ok) this.log.warn({ message: 'not banning an exempt source (never_ban or trusted)', address, reason, detail });
      return undefined;
    }
    const existing = this.bans.get(address);
    if (existing !== undefined && existing.expiresAt > now) return existing;
    const s = this.rules.settings;
    let offence = 1;
    try {
      offence = this.store.countSince(address, now - s.bans.remember_seconds * 1000) + 1;
    } catch (err) {
      this.log.error({ message: 'cannot read ban history; treating as a first offence', address, error: String(err) });
    }
    const ladder = s.bans.durations_seconds;
    const seconds = reason === 'scanner' ? s.scanners.ban_seconds : ladder[Math.min(offence - 1, ladder.length - 1)];
    const ban: Ban = { address, reason, detail, evidence, appliedAt: now, expiresAt: now + seconds * 1000, offence };
    this.bans.set(address, ban);
    try {
      this.store.add(ban);
    } catch (err) {
      // The ban holds in memory either way; only its survival across a restart is at risk.
      this.log.error({ message: 'cannot store a ban; it holds until restart', address, error: String(err) });
    }
    const t = this.throttle.take('ban');
    if (t.ok) {
      this.log.warn({
        message: 'source banned',
        address,
        reason,
        detail,
        evidence,
        offence,
        seconds,
        expiresAt: new Date(ban.expiresAt).toISOString(),
        ...(t.suppressed > 0 && { suppressedBanLines: t.suppressed }),
      });
    }
    this.safeEmit('banned', ban);
    return ban;
  }

  // ---------------------------------------------------------------------------------------------

  private countDrop(): true {
    this.dropped++;
    return true;
  }

  private loadBans(): void {
    let active: Ban[];
    try {
      active = this.store.active(this.now());
    } catch (err) {
      this.log.error({ message: 'cannot read bans from the store; keeping the bans in memory', error: String(err) });
      return;
    }
    this.bans.clear();
    // Newest first from the store: keep the newest ban of an address.
    for (const b of active) if (!this.bans.has(b.address)) this.bans.set(b.address, b);
  }

  private flagStuffing(e: CredentialStuffingEvent): void {
    this.stuffed.set(e.user, e);
    this.log.warn({ message: 'credential stuffing: one username refused from many sources', ...e });
    this.safeEmit('credential_stuffing', e);
  }

  private authenticated(user: string, address: string, now: number): void {
    let known = this.knownGood.get(user);
    if (known === undefined) this.knownGood.set(user, (known = new Set()));
    if (!known.has(address)) {
      if (this.stuffed.has(user)) {
        this.suspects.set(user, { source: address, at: now });
        this.log.warn({ message: 'stuffed account logged in from a new source', user, address });
      }
      if (known.size < 50) known.add(address);
    }
  }

  private safeEmit<K extends keyof SourceDefenseEvents>(event: K, ...args: SourceDefenseEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: SourceDefenseEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ message: `a defense '${event}' listener threw`, error: err instanceof Error ? err.stack : String(err) });
    }
  }
}

function floodFor(r: CompiledDefense): FloodDetector {
  const f = r.settings.flood;
  return new FloodDetector({ windowSeconds: f.window_seconds, limits: f.limits, maxSources: f.max_sources });
}

function authFor(r: CompiledDefense): AuthWatch {
  const a = r.settings.auth_failures;
  return new AuthWatch(
    { max: a.per_source.max, windowSeconds: a.per_source.window_seconds },
    { max: a.not_found.max, windowSeconds: a.not_found.window_seconds },
    { max: a.per_user.max, windowSeconds: a.per_user.window_seconds, sources: a.per_user.sources },
  );
}
