import {
  DEFAULT_MAX_CALL_SECONDS,
  UNKNOWN_ACCOUNT_ID,
  type CompiledAccount,
  type CompiledRules,
  type RejectResponse,
} from '../rules/compile';
import { AccountState } from './account-state';
import { CallLedger, type SlotOwner } from './call-ledger';
import { FAMILY_NONE, parseIp } from './ip';
import { KeyedRateLimiter, MINUTE_MS, RATE_OK, RATE_SECOND, RateWindow, checkRate, commitAdmit } from './rate-limiter';
import type { CallAttempt, RuleId, Verdict } from './types';

/**
 * The decision for an initial INVITE, cheapest check first, against compiled rules that can be
 * swapped at any time. Per call it parses the source once (shared by three CIDR tries), reads
 * the dial plan, walks one digit trie, and touches the rate/slot state of one key; rejections
 * build their detail text, admissions allocate only the verdict and the slot.
 *
 * Per-account state is owned here: one AccountState (rate window and live-call count together)
 * per configured account, in an array indexed by CompiledAccount.index. With 100 000 accounts the
 * hot path is bound by cache misses, and this is one array read and one object where keyed tables
 * (lru-cache for the windows, a Map for the counts, as before) cost hash lookups plus LRU
 * bookkeeping on every call (bench/core-bench.ts). A swap of the rules moves each account's state
 * to its new index by id (swapRules), so windows and slots carry over an edit; the state of an
 * account removed while it has live calls is kept aside until they end, in case it comes back.
 * Idle state (no admit in the last minute, so forgetting it changes no answer) is dropped by a
 * sweep once a minute of call time, or only its admits when it still has live calls. Callers with
 * no account (unknown_caller: allow, keyed "_unknown:"+ip) use the bounded KeyedRateLimiter and
 * the ledger's own counters instead, since their keys come from the network.
 */

export interface GuardCoreOptions {
  /** Backstop for slots whose BYE was lost; default guard.sip.max_call_seconds, then 14 400 s. */
  maxCallSeconds?: number;
  /** Bound on live call slots (memory); default 131 072. */
  maxLiveCalls?: number;
  /** Bound on unknown-caller sources with rate-window state (memory); default 262 144. */
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
  private readonly keyedLimiter: KeyedRateLimiter;
  private readonly ledger: CallLedger;
  /** Per account index: its AccountState (undefined until first use, and again once idle). */
  private accountState: (AccountState | undefined)[];
  /** Accounts holding an AccountState in accountState. */
  private stateCount = 0;
  /** States of accounts gone from the rules while their calls go on, by account id. */
  private readonly orphans = new Map<string, AccountState>();
  /** Call time of the last idle-window sweep (0 until the first call). */
  private lastWindowSweep = 0;
  private tollBlocked: ReadonlySet<string> = new Set();

  constructor(rules: CompiledRules, opts: GuardCoreOptions = {}) {
    this.current = rules;
    this.keyedLimiter = new KeyedRateLimiter({ maxTracked: opts.maxTrackedAccounts });
    this.ledger = new CallLedger({
      maxCallSeconds: opts.maxCallSeconds ?? rules.guard.sip.max_call_seconds ?? DEFAULT_MAX_CALL_SECONDS,
      maxLiveCalls: opts.maxLiveCalls,
    });
    this.accountState = GuardCore.slotsFor(rules);
  }

  /** A packed (not holey) array, so index reads stay fast. */
  private static slotsFor(rules: CompiledRules): (AccountState | undefined)[] {
    return new Array<AccountState | undefined>(rules.accounts.size).fill(undefined);
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

  /** Replaces the rules for every later decision; rate windows and live slots stay, by account id. */
  swapRules(next: CompiledRules): void {
    const old = this.accountState;
    const moved = GuardCore.slotsFor(next);
    for (const state of old) {
      if (state === undefined) continue;
      const account = next.accounts.get(state.account);
      if (account !== undefined && account.index >= 0) moved[account.index] = state;
      else if (state.live > 0) this.orphans.set(state.account, state);
    }
    for (const [id, state] of this.orphans) {
      const account = next.accounts.get(id);
      if (account === undefined || account.index < 0) continue;
      moved[account.index] = state;
      this.orphans.delete(id);
    }
    let count = 0;
    for (const state of moved) if (state !== undefined) count++;
    this.current = next;
    this.accountState = moved;
    this.stateCount = count;
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

    const slot = this.overLimit(account, key, a);
    if (typeof slot !== 'number') return verdict(slot.rule, r.responses.rate_limit, slot.detail, account.id, e164, international);
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
      slot,
    };
  }

  /** True while the slot handle (Verdict.slot) is held: admitted, not yet released or expired. */
  isAdmitted(slot: number): boolean {
    return this.ledger.has(slot);
  }

  /** In-dialog activity: restarts the slot's backstop timer. */
  touch(slot: number, now: number): void {
    this.ledger.touch(slot, now);
  }

  /** Gives the slot back (final non-2xx, CANCEL, BYE). Idempotent; a stale handle is ignored. */
  release(slot: number): void {
    this.ledger.release(slot);
  }

  stats(): { liveCalls: number; trackedAccounts: number } {
    return { liveCalls: this.ledger.size, trackedAccounts: this.stateCount + this.keyedLimiter.size };
  }

  /**
   * Rate windows, then concurrent slots; on success records the admit and returns the slot handle
   * (the one the call already holds, for a repeated INVITE). Nothing is recorded for a call
   * rejected here (or earlier).
   */
  private overLimit(account: CompiledAccount, key: string, a: CallAttempt): number | { rule: RuleId; detail: string } {
    const limits = account;
    const index = account.index;
    const now = a.now;
    if (now - this.lastWindowSweep >= MINUTE_MS) this.sweepIdleState(now);
    let state: AccountState | undefined;
    if (index >= 0) {
      state = this.accountState[index];
      if (state === undefined) {
        state = new AccountState(account.id);
        this.accountState[index] = state;
        this.stateCount++;
      }
    }
    let rate: RateWindow | undefined;
    if (limits.callsPerSecond !== Infinity || limits.callsPerMinute !== Infinity) {
      rate = state !== undefined ? state : this.keyedLimiter.window(key, now);
      const result = checkRate(rate, limits.callsPerSecond, limits.callsPerMinute, now);
      if (result === RATE_SECOND) return { rule: 'calls_per_second', detail: `calls_per_second ${limits.callsPerSecond} exceeded` };
      if (result !== RATE_OK) return { rule: 'calls_per_minute', detail: `calls_per_minute ${limits.callsPerMinute} exceeded` };
    }
    const owner: SlotOwner = state !== undefined ? state : this.ledger.counter(key);
    // A repeated INVITE for a call that already holds a slot is not a new concurrent call.
    const held = a.heldSlot !== undefined && this.ledger.has(a.heldSlot);
    if (limits.concurrentCalls !== Infinity && !held) {
      this.ledger.advance(now);
      if (owner.live >= limits.concurrentCalls) {
        return { rule: 'concurrent_calls', detail: `concurrent_calls ${limits.concurrentCalls} exceeded` };
      }
    }
    if (rate !== undefined) commitAdmit(rate, limits.callsPerSecond, limits.callsPerMinute, now);
    return held ? a.heldSlot! : this.ledger.take(owner, now);
  }

  /**
   * Forgets what no answer depends on any more: the state of accounts with no admit in the last
   * minute and no live call goes, and an idle account with live calls keeps only its count. One
   * pass over the array a minute of call time (~1 ms per 100 000 accounts).
   */
  private sweepIdleState(now: number): void {
    this.lastWindowSweep = now;
    const states = this.accountState;
    for (let i = 0; i < states.length; i++) {
      const s = states[i];
      if (s === undefined || !s.isIdle(now)) continue;
      if (s.live > 0) {
        if (s.count > 0) s.clearAdmits();
      } else {
        states[i] = undefined;
        this.stateCount--;
      }
    }
    for (const [id, s] of this.orphans) if (s.live <= 0) this.orphans.delete(id);
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
