/**
 * Concurrent-call slots: one per admitted Call-ID, counted per account.
 *
 * Slots normally end with release() (final non-2xx, CANCEL, BYE). Because a lost BYE must not
 * hold a slot forever, each slot also expires max_call_seconds after it was taken or last
 * touched, and at most maxLiveCalls slots are held (beyond it the least recently touched slot is
 * given back). Every way out (release, expiry, eviction) goes through one place that decrements
 * the account's count, so a slot is given back exactly once.
 *
 * This is a purpose-built structure rather than lru-cache (which the rate limiter still uses for
 * its per-account state): the ledger is on every admitted call's path twice (take, then release),
 * and its ttl is the same for every slot, so "ordered by expiry" is "ordered by last take/touch".
 * A Map from Call-ID to a slot number keeps that order for free (insertion order; touch re-inserts),
 * which makes it both the expiry queue (swept lazily from the front) and the LRU for eviction at
 * max. Per-slot data lives in arrays indexed by slot number with a free list, so taking a slot
 * allocates nothing but the Map entry.
 *
 * The ledger runs on call time, not wall time: its clock is the latest `now` seen by take/touch/
 * advance, so a test clock drives expiry exactly and production (monotonic ms) behaves as real
 * time. A slot taken or touched at clock c is live while clock <= c + ttl. Expiry is noticed on
 * access (has/take/touch drop an expired slot at once) and by a sweep of the expired front of the
 * queue every 1% of max_call_seconds, at least 1 s and at most 60 s apart, so a forgotten slot can
 * hold its account's count past max_call_seconds by that much.
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
const INITIAL_SLOTS = 1024;

export class CallLedger {
  /** Call-ID -> slot number, in order of last take/touch (= expiry order). */
  private readonly slots = new Map<string, number>();
  /** Per slot: clock value after which it has expired. */
  private deadline: Float64Array;
  /** Per slot: the account counter it holds a unit of (null when free). */
  private owner: (LiveCounter | null)[];
  /** Free slot numbers (a stack) and the count of never-used ones handed out so far. */
  private free: Int32Array;
  private freeTop = 0;
  private fresh = 0;
  private readonly counters = new Map<string, LiveCounter>();
  private readonly ttl: number;
  private readonly max: number;
  private clock = 0;
  private lastNow = 0;
  private started = false;
  private lastSlotSweep = 0;
  private lastCounterSweep = 0;
  private readonly sweepSlotsMs: number;

  constructor(opts: CallLedgerOptions = {}) {
    const seconds = opts.maxCallSeconds ?? 14_400;
    this.sweepSlotsMs = Math.min(60_000, Math.max(1000, seconds * 10));
    this.ttl = Math.max(1, Math.round(seconds * 1000));
    this.max = Math.max(1, opts.maxLiveCalls ?? 131_072);
    const n = Math.min(this.max, INITIAL_SLOTS);
    this.deadline = new Float64Array(n);
    this.owner = new Array<LiveCounter | null>(n).fill(null);
    this.free = new Int32Array(n);
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
    const held = this.slots.get(callId);
    if (held !== undefined) {
      if (this.deadline[held] >= this.clock) return false;
      this.drop(callId, held); // expired: give it back before reusing the key
    }
    if (this.slots.size >= this.max) this.evictOldest();
    const c = typeof account === 'string' || account.detached ? this.counter(typeof account === 'string' ? account : account.account) : account;
    c.live++;
    const slot = this.alloc();
    this.deadline[slot] = this.clock + this.ttl;
    this.owner[slot] = c;
    this.slots.set(callId, slot);
    return true;
  }

  /** Gives the slot back; safe to call any number of times. */
  release(callId: string): void {
    const slot = this.slots.get(callId);
    if (slot !== undefined) this.drop(callId, slot);
  }

  /** In-dialog activity: restarts the backstop timer (an already expired slot stays gone). */
  touch(callId: string, now: number): void {
    this.advance(now);
    const slot = this.slots.get(callId);
    if (slot === undefined) return;
    if (this.deadline[slot] < this.clock) {
      this.drop(callId, slot);
      return;
    }
    this.deadline[slot] = this.clock + this.ttl;
    // Re-insert so the Map's order stays the expiry order.
    this.slots.delete(callId);
    this.slots.set(callId, slot);
  }

  has(callId: string): boolean {
    const slot = this.slots.get(callId);
    if (slot === undefined) return false;
    if (this.deadline[slot] >= this.clock) return true;
    this.drop(callId, slot);
    return false;
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
    if (!this.started) {
      this.started = true;
      this.lastNow = now;
    } else if (now > this.lastNow) {
      this.clock += now - this.lastNow;
      this.lastNow = now;
    }
    if (this.clock - this.lastSlotSweep >= this.sweepSlotsMs) {
      this.lastSlotSweep = this.clock;
      this.sweepSlots();
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

  /** Gives back the expired front of the queue. */
  private sweepSlots(): void {
    const clock = this.clock;
    for (const [callId, slot] of this.slots) {
      if (this.deadline[slot] >= clock) break;
      this.drop(callId, slot);
    }
  }

  private evictOldest(): void {
    for (const [callId, slot] of this.slots) {
      this.drop(callId, slot);
      return;
    }
  }

  /** The one way a slot ends: its account gets the unit back, the number goes on the free list. */
  private drop(callId: string, slot: number): void {
    this.slots.delete(callId);
    const c = this.owner[slot];
    if (c !== null) c.live--;
    this.owner[slot] = null;
    this.free[this.freeTop++] = slot;
  }

  private alloc(): number {
    if (this.freeTop > 0) return this.free[--this.freeTop];
    if (this.fresh === this.deadline.length) this.grow();
    return this.fresh++;
  }

  private grow(): void {
    const n = Math.min(this.max, this.deadline.length * 2);
    const deadline = new Float64Array(n);
    deadline.set(this.deadline);
    this.deadline = deadline;
    const free = new Int32Array(n);
    free.set(this.free);
    this.free = free;
    const owner = this.owner;
    for (let i = owner.length; i < n; i++) owner.push(null);
  }
}
