import {
  DEFAULT_MAX_CALL_SECONDS,
  UNKNOWN_ACCOUNT_ID,
  type CompiledAccount,
  type CompiledRules,
  type RejectResponse,
} from '../rules/compile';
import { CallLedger, type LiveCounter } from './call-ledger';
import { FAMILY_NONE, parseIp } from './ip';
import { RATE_OK, RATE_SECOND, RateLimiter, type RateState } from './rate-limiter';
import type { CallAttempt, RuleId, Verdict } from './types';

/**
 * The decision for an initial INVITE, cheapest check first, against compiled rules that can be
 * swapped at any time. Per call it parses the source once (shared by three CIDR tries), reads
 * the dial plan, walks one digit trie, and touches the rate/slot state of one key; rejections
 * build their detail text, admissions allocate only the verdict and the slot.
 *
 * Rate windows and call slots are keyed by account id (or "_unknown:"+ip), not by compiled
 * objects, so they carry over a swap of the rules. With 100 000 accounts the hot path is bound
 * by cache misses, so the core also keeps each account's RateState and LiveCounter side by side
 * in one array indexed by CompiledAccount.index (RateState at 2*index, LiveCounter at 2*index+1,
 * so both references share a cache line): one array read instead of two hash-table lookups a
 * call. The array is per core and per rules (rebuilt empty on a swap, refilled by id on first use).
 */

export interface GuardCoreOptions {
  /** Backstop for slots whose BYE was lost; default guard.sip.max_call_seconds, then 14 400 s. */
  maxCallSeconds?: number;
  /** Bound on live call slots (memory); default 131 072. */
  maxLiveCalls?: number;
  /** Bound on accounts with rate-window state (memory); default 262 144. */
  maxTrackedAccounts?: number;
}

const words = new Uint32Array(4);

function verdict(
  rule: RuleId,
  response: RejectResponse,
  detail: string,
  account: string | undefined,
  normalised: string | undefined,
  international: boolean | undefined,
): Verdict {
  return {
    allow: false,
    rule,
    status: response.status,
    reason: response.reason,
    detail,
    retryAfter: response.retryAfter,
    account,
    normalised,
    international,
  };
}

/** SIP peering by source first, then the digest user, the asserted identity, the From user. */
function attribute(r: CompiledRules, a: CallAttempt, family: number): CompiledAccount | undefined {
  const bySource = r.accountBySource.lookupParsed(family, words);
  if (bySource !== undefined) return bySource;
  const users = r.userIndex;
  let account: CompiledAccount | undefined;
  if (a.authUser !== undefined) account = users.get(a.authUser);
  if (account === undefined && a.assertedUser !== undefined) account = users.get(a.assertedUser);
  if (account === undefined && a.fromUser !== undefined) account = users.get(a.fromUser);
  return account;
}

export class GuardCore {
  private current: CompiledRules;
  private readonly limiter: RateLimiter;
  private readonly ledger: CallLedger;
  /** Per account index: [2i] its RateState, [2i+1] its LiveCounter (undefined until first use). */
  private accountState: (RateState | LiveCounter | undefined)[];
  private tollBlocked: ReadonlySet<string> = new Set();

  constructor(rules: CompiledRules, opts: GuardCoreOptions = {}) {
    this.current = rules;
    this.limiter = new RateLimiter({ maxTracked: opts.maxTrackedAccounts });
    this.ledger = new CallLedger({
      maxCallSeconds: opts.maxCallSeconds ?? rules.guard.sip.max_call_seconds ?? DEFAULT_MAX_CALL_SECONDS,
      maxLiveCalls: opts.maxLiveCalls,
    });
    this.accountState = GuardCore.slotsFor(rules);
  }

  /** A packed (not holey) array, so index reads stay fast. */
  private static slotsFor(rules: CompiledRules): (RateState | LiveCounter | undefined)[] {
    return new Array<RateState | LiveCounter | undefined>(2 * rules.accounts.size).fill(undefined);
  }

  get rules(): CompiledRules {
    return this.current;
  }

  /**
   * Accounts whose international calls are refused (rule toll_block) while domestic calls go on.
   * Owned by the fraud monitor / admin store; the core only reads it. Replaced whole, never mutated
   * in place, so a decision sees one consistent set.
   */
  setTollBlocked(accountIds: ReadonlySet<string>): void {
    this.tollBlocked = accountIds;
  }

  isTollBlocked(accountId: string): boolean {
    return this.tollBlocked.has(accountId);
  }

  /** Replaces the rules for every later decision; counters and live slots stay. */
  swapRules(next: CompiledRules): void {
    this.current = next;
    this.accountState = GuardCore.slotsFor(next);
  }

  /** Guard-wide allowed_sources only, for every request method; null when the source may talk to us. */
  checkSource(ip: string): Verdict | null {
    const family = parseIp(ip, words);
    if (family !== FAMILY_NONE && this.current.allowedSources.hasParsed(family, words)) return null;
    return this.sourceRejected(ip, family);
  }

  decide(a: CallAttempt): Verdict {
    const r = this.current;
    const family = parseIp(a.source, words);
    if (family === FAMILY_NONE || !r.allowedSources.hasParsed(family, words)) return this.sourceRejected(a.source, family);

    let account = attribute(r, a, family);
    let key: string;
    if (account === undefined) {
      if (r.guard.unknown_caller !== 'allow') {
        return verdict('unknown_caller', r.responses.unknown_caller, `no account matches source ${a.source} or the caller's user`, undefined, undefined, undefined);
      }
      account = r.unknownAccount;
      key = UNKNOWN_ACCOUNT_ID + ':' + a.source;
    } else {
      key = account.id;
      if (account.allowedSources !== null && !account.allowedSources.hasParsed(family, words)) {
        return verdict('account_source', r.responses.source, `source ${a.source} is outside the allowed_sources of account ${account.id}`, account.id, undefined, undefined);
      }
    }

    const n = account.dialPlan.normalise(a.dialled, a.phoneContext);
    let e164: string | undefined;
    let international = false;
    if (n.kind === 'invalid') {
      return verdict('invalid_destination', r.responses.invalid_destination, `unreadable destination: ${n.why}`, account.id, undefined, undefined);
    }
    if (n.kind === 'number') {
      e164 = n.e164;
      international = n.international;
      if (international && !account.international) {
        return verdict('international', r.responses.international, `international destination ${e164} not allowed for account ${account.id}`, account.id, e164, true);
      }
      if (international && this.tollBlocked.size !== 0 && this.tollBlocked.has(account.id)) {
        return verdict('toll_block', r.responses.toll_block, `account ${account.id} is under an international toll block`, account.id, e164, true);
      }
      const risk = r.highRisk.lookup(e164);
      if (risk !== undefined && (account.allowDestinations === null || !account.allowDestinations.matches(e164))) {
        return this.highRisk(r, account, a, risk.detail, e164, international);
      }
    }

    const over = this.overLimit(account, key, a);
    if (over !== null) return verdict(over.rule, r.responses.rate_limit, over.detail, account.id, e164, international);
    return {
      allow: true,
      rule: 'allow',
      status: 0,
      reason: '',
      detail: '',
      retryAfter: undefined,
      account: account.id,
      normalised: e164,
      international,
    };
  }

  /** True while callId holds a slot (admitted, not yet released or expired). */
  isAdmitted(callId: string): boolean {
    return this.ledger.has(callId);
  }

  /** In-dialog activity: restarts the slot's backstop timer. */
  touch(callId: string, now: number): void {
    this.ledger.touch(callId, now);
  }

  /** Gives the slot back (final non-2xx, CANCEL, BYE). Idempotent. */
  release(callId: string): void {
    this.ledger.release(callId);
  }

  stats(): { liveCalls: number; trackedAccounts: number } {
    return { liveCalls: this.ledger.size, trackedAccounts: this.limiter.size };
  }

  /**
   * Rate windows, then concurrent slots; on success records the admit and takes the slot.
   * Nothing is recorded for a call rejected here (or earlier).
   */
  private overLimit(account: CompiledAccount, key: string, a: CallAttempt): { rule: RuleId; detail: string } | null {
    const limits = account.limits;
    const index = account.index;
    const states = this.accountState;
    let rate: RateState | undefined;
    if (limits.callsPerSecond !== Infinity || limits.callsPerMinute !== Infinity) {
      rate = index >= 0 ? (states[2 * index] as RateState | undefined) : undefined;
      if (rate === undefined || rate.dead) {
        rate = this.limiter.state(key, a.now);
        if (index >= 0) states[2 * index] = rate;
      }
      const result = this.limiter.check(rate, limits.callsPerSecond, limits.callsPerMinute, a.now);
      if (result === RATE_SECOND) return { rule: 'calls_per_second', detail: `calls_per_second ${limits.callsPerSecond} exceeded` };
      if (result !== RATE_OK) return { rule: 'calls_per_minute', detail: `calls_per_minute ${limits.callsPerMinute} exceeded` };
    }
    let counter = index >= 0 ? (states[2 * index + 1] as LiveCounter | undefined) : undefined;
    if (counter === undefined || counter.detached) {
      counter = this.ledger.counter(key);
      if (index >= 0) states[2 * index + 1] = counter;
    }
    if (limits.concurrentCalls !== Infinity) {
      this.ledger.advance(a.now);
      // A repeated INVITE for a call that already holds a slot is not a new concurrent call.
      if (counter.live >= limits.concurrentCalls && !this.ledger.has(a.callId)) {
        return { rule: 'concurrent_calls', detail: `concurrent_calls ${limits.concurrentCalls} exceeded` };
      }
    }
    if (rate !== undefined) this.limiter.commit(rate, limits.callsPerSecond, limits.callsPerMinute, a.now);
    this.ledger.take(a.callId, counter, a.now);
    return null;
  }

  /** A high-risk refusal; when the digits look like a misdialled domestic number it says so (DialPlan.misdialOf). */
  private highRisk(r: CompiledRules, account: CompiledAccount, a: CallAttempt, detail: string, e164: string, international: boolean): Verdict {
    const meant = account.dialPlan.misdialOf(a.dialled);
    if (meant === undefined) return verdict('high_risk', r.responses.high_risk, detail, account.id, e164, international);
    const v = verdict('high_risk', r.responses.high_risk, `possible misdial of ${meant}: ${detail}`, account.id, e164, international);
    v.misdial = meant;
    return v;
  }

  private sourceRejected(ip: string, family: number): Verdict {
    const detail = family === FAMILY_NONE ? 'source is not an IP address' : `source ${ip} is outside allowed_sources`;
    return verdict('source', this.current.responses.source, detail, undefined, undefined, undefined);
  }
}
