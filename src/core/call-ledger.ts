import { LRUCache } from 'lru-cache';

/**
 * Concurrent-call slots: one per admitted Call-ID, counted per account.
 *
 * Slots normally end with release() (final non-2xx, CANCEL, BYE). Because a lost BYE must not
 * hold a slot forever, each slot also lives in an LRU with ttl = max_call_seconds whose dispose
 * hook gives the slot back, whatever removed it (release, expiry, or eviction at max).
 *
 * The LRU runs on call time, not wall time: its clock is the latest `now` seen by take/touch/
 * advance, so a test clock drives expiry exactly and production (monotonic ms) behaves as
 * real time. Expiry is noticed lazily on access and by a sweep (O(live calls)) every 1% of
 * max_call_seconds, at least 1 s and at most 60 s apart, so a forgotten slot can outlive
 * max_call_seconds by that much, and the sweep costs next to nothing per call.
 *
 * Per-account counts are LiveCounter objects a caller may hold across calls (GuardCore does, to
 * skip a map lookup per call). Idle counters are dropped by a sweep once a minute and marked
 * detached; holders then fetch a new one with counter().
 */

export interface CallLedgerOptions {
  /** Backstop lifetime of a slot without touch(); default 14 400 s. */
  maxCallSeconds?: number;
  /** Upper bound on live slots; beyond it the least recently touched slot is given back. */
  maxLiveCalls?: number;
}

export class LiveCounter {
  live = 0;
  /** Set once the ledger has dropped this idle counter. */
  detached = false;
  constructor(readonly account: string) {}
}

const SWEEP_COUNTERS_MS = 60_000;
// Shared option objects: lru-cache's `options = {}` defaults would otherwise allocate per call.
const PLAIN: { status?: undefined } = {};
const REFRESH: { updateAgeOnGet: true; status?: undefined } = { updateAgeOnGet: true };

export class CallLedger {
  private readonly slots: LRUCache<string, LiveCounter>;
  private readonly counters = new Map<string, LiveCounter>();
  private clock = 0;
  private lastNow = 0;
  private lastSlotSweep = 0;
  private lastCounterSweep = 0;
  private readonly sweepSlotsMs: number;

  constructor(opts: CallLedgerOptions = {}) {
    const seconds = opts.maxCallSeconds ?? 14_400;
    this.sweepSlotsMs = Math.min(60_000, Math.max(1000, seconds * 10));
    this.slots = new LRUCache<string, LiveCounter>({
      max: opts.maxLiveCalls ?? 131_072,
      ttl: Math.max(1, Math.round(seconds * 1000)),
      ttlResolution: 0,
      perf: { now: () => this.clock },
      dispose: (counter) => {
        counter.live--;
      },
    });
  }

  /** The live-call counter of an account, created on first use. Hold it while !detached. */
  counter(account: string): LiveCounter {
    let c = this.counters.get(account);
    if (c === undefined) {
      c = new LiveCounter(account);
      this.counters.set(account, c);
    }
    return c;
  }

  /** Takes a slot for callId. A Call-ID that already holds one keeps it (returns false). */
  take(callId: string, account: string | LiveCounter, now: number): boolean {
    this.advance(now);
    // get(), unlike has(), drops an expired entry (giving its slot back) before we reuse the key.
    if (this.slots.get(callId, PLAIN) !== undefined) return false;
    const c = typeof account === 'string' || account.detached ? this.counter(typeof account === 'string' ? account : account.account) : account;
    c.live++;
    this.slots.set(callId, c, PLAIN);
    return true;
  }

  /** Gives the slot back; safe to call any number of times. */
  release(callId: string): void {
    this.slots.delete(callId);
  }

  /** In-dialog activity: restarts the backstop timer (an already expired slot stays gone). */
  touch(callId: string, now: number): void {
    this.advance(now);
    this.slots.get(callId, REFRESH);
  }

  has(callId: string): boolean {
    return this.slots.has(callId, PLAIN);
  }

  /** Live slots of an account. */
  count(account: string): number {
    return this.counters.get(account)?.live ?? 0;
  }

  /** Live slots in total. */
  get size(): number {
    return this.slots.size;
  }

  /** Moves the ledger's clock to now (monotonic) and sweeps expired slots now and then. */
  advance(now: number): void {
    if (this.clock === 0) {
      this.clock = 1; // lru-cache reads a start time of 0 as "no ttl"
      this.lastNow = now;
    } else if (now > this.lastNow) {
      this.clock += now - this.lastNow;
      this.lastNow = now;
    }
    if (this.clock - this.lastSlotSweep >= this.sweepSlotsMs) {
      this.lastSlotSweep = this.clock;
      this.slots.purgeStale();
    }
    if (this.clock - this.lastCounterSweep >= SWEEP_COUNTERS_MS) {
      this.lastCounterSweep = this.clock;
      for (const [account, c] of this.counters) {
        if (c.live <= 0) {
          c.detached = true;
          this.counters.delete(account);
        }
      }
    }
  }
}
