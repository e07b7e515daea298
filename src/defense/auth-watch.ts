/**
 * Password cracking and account enumeration, seen in the core's answers: refused credentials
 * (401/407 to a request that carried some, 403) and 404s for unknown users, counted per source
 * and, for refused credentials, per username across sources (credential stuffing).
 *
 * Counts are sliding: each key keeps the timestamps of its recent failures, at most `max` of
 * them, so "10 in 300 s" means exactly that. Keys live in LRUs, so memory stays bounded however
 * many addresses or usernames an attacker cycles through.
 */
import { LRUCache } from 'lru-cache';

export interface WindowLimit {
  max: number;
  windowSeconds: number;
}

/** The timestamps of the last `max` events of one key. */
class Recent {
  readonly at: number[] = [];
  readonly users = new Set<string>();
  userAgent?: string;

  /** Adds an event and returns how many fall inside the window. */
  push(now: number, windowMs: number, max: number): number {
    this.at.push(now);
    if (this.at.length > max) this.at.shift();
    while (this.at.length > 0 && now - this.at[0] >= windowMs) this.at.shift();
    return this.at.length;
  }
}

export interface SourceFailure {
  kind: 'auth_failures' | 'not_found';
  count: number;
  limit: WindowLimit;
  users: string[];
  userAgent?: string;
}

export interface UserStuffing {
  user: string;
  failures: number;
  sources: string[];
}

export class AuthWatch {
  private readonly bySource = new LRUCache<string, Recent>({ max: 100_000 });
  private readonly notFound = new LRUCache<string, Recent>({ max: 100_000 });
  private readonly byUser = new LRUCache<string, { at: number[]; sources: Map<string, number> }>({ max: 100_000 });

  constructor(
    private readonly perSource: WindowLimit,
    private readonly notFoundLimit: WindowLimit,
    private readonly perUser: WindowLimit & { sources: number },
  ) {}

  /** A refused credential from `address` for `user`. Returns the evidence when the source is over its limit. */
  refused(address: string, user: string, userAgent: string | undefined, now: number): SourceFailure | undefined {
    return this.countSource(this.bySource, 'auth_failures', this.perSource, address, user, userAgent, now);
  }

  /** A 404 to `address` (unknown user or extension). */
  notFoundAnswer(address: string, user: string | undefined, userAgent: string | undefined, now: number): SourceFailure | undefined {
    return this.countSource(this.notFound, 'not_found', this.notFoundLimit, address, user, userAgent, now);
  }

  /**
   * Counts a refused credential against the username; returns the evidence the first time the
   * username crosses the limit from enough distinct sources within the window.
   */
  refusedForUser(user: string, address: string, now: number): UserStuffing | undefined {
    const windowMs = this.perUser.windowSeconds * 1000;
    let u = this.byUser.get(user);
    if (!u) this.byUser.set(user, (u = { at: [], sources: new Map() }));
    u.at.push(now);
    if (u.at.length > this.perUser.max) u.at.shift();
    while (u.at.length > 0 && now - u.at[0] >= windowMs) u.at.shift();
    u.sources.delete(address);
    u.sources.set(address, now);
    for (const [s, t] of u.sources) {
      if (now - t < windowMs && u.sources.size <= 1000) break;
      u.sources.delete(s);
    }
    if (u.at.length >= this.perUser.max && u.sources.size >= this.perUser.sources) {
      const hit = { user, failures: u.at.length, sources: [...u.sources.keys()].slice(-20) };
      u.at.length = 0;
      return hit;
    }
    return undefined;
  }

  forget(address: string): void {
    this.bySource.delete(address);
    this.notFound.delete(address);
  }

  private countSource(
    table: LRUCache<string, Recent>,
    kind: SourceFailure['kind'],
    limit: WindowLimit,
    address: string,
    user: string | undefined,
    userAgent: string | undefined,
    now: number,
  ): SourceFailure | undefined {
    let r = table.get(address);
    if (!r) table.set(address, (r = new Recent()));
    const n = r.push(now, limit.windowSeconds * 1000, limit.max);
    if (user !== undefined && r.users.size < 20) r.users.add(user);
    if (userAgent !== undefined) r.userAgent = userAgent;
    if (n < limit.max) return undefined;
    table.delete(address);
    return { kind, count: n, limit, users: [...r.users], userAgent: r.userAgent };
  }
}
