/**
 * Concurrent-call slots: one per admitted call, counted per account.
 *
 * Slots normally end with release() (final non-2xx, CANCEL, BYE). Because a lost BYE must not
 * hold a slot forever, each slot also expires max_call_seconds after it was taken or last
 * touched, and at most maxLiveCalls slots are held (beyond it the least recently touched slot is
 * given back). Every way out (release, expiry, eviction) goes through one place that decrements
 * the account's count, so a slot is given back exactly once.
 *
 * A slot is named by a handle (a number) that take() returns and the front end keeps with its own
 * per-call record, which it has anyway. The ledger used to be keyed by Call-ID in a Map; hashing a
 * freshly parsed Call-ID and the Map's insert, lookup and delete cost ~250 ns of a ~2.4 us
 * decision (bench/core-bench.ts), for a key the front end had already looked up. A handle is the
 * slot number plus a generation that changes on every reuse, so a stale handle (a second release
 * after the slot went to another call) is recognised and ignored.
 *
 * The ttl is the same for every slot, so "ordered by expiry" is "ordered by last take/touch": a
 * doubly linked list over slot numbers (typed arrays, O(1) append and move-to-tail) is both the
 * expiry queue (swept lazily from the head) and the LRU for eviction at max. Per-slot data lives
 * in typed arrays with a free list, so taking a slot allocates nothing.
 *
 * The ledger runs on call time, not wall time: its clock is the latest `now` seen by take/touch/
 * advance, so a test clock drives expiry exactly and production (monotonic ms) behaves as real
 * time. A slot taken or touched at clock c is live while clock <= c + ttl. Expiry is noticed on
 * access (has/touch drop an expired slot at once) and by a sweep of the expired head of the queue
 * every 1% of max_call_seconds, at least 1 s and at most 60 s apart, so a forgotten slot can hold
 * its account's count past max_call_seconds by that much.
 *
 * Per-account counts are SlotOwner objects. A caller may bring its own (GuardCore brings one
 * AccountState per configured account, which also holds the account's rate window) or use the
 * ledger's LiveCounters by account id, created on first use. Idle LiveCounters are dropped by a
 * sweep once a minute and marked detached; holders then fetch a new one with counter().
 */

export interface CallLedgerOptions {
  /** Backstop lifetime of a slot without touch(); default 14 400 s. */
  maxCallSeconds?: number;
  /** Upper bound on live slots; beyond it the least recently touched slot is given back. */
  maxLiveCalls?: number;
}

/** Whatever counts an account's live slots: the ledger's own LiveCounter, or the core's AccountState. */
export interface SlotOwner {
  live: number;
  /** Set once the ledger has dropped this idle counter (never for owners the ledger did not create). */
  readonly detached: boolean;
  readonly account: string;
}

export class LiveCounter implements SlotOwner {
  live = 0;
  detached = false;
  constructor(readonly account: string) {}
}

const SWEEP_COUNTERS_MS = 60_000;
const INITIAL_SLOTS = 1024;
/** Slot numbers stay below this; the generation is the handle's higher part. */
const SLOT_SPACE = 1 << 22;
/** Generations wrap here so a handle stays an exact integer (2^30 * 2^22 < 2^53). */
const GENERATIONS = 2 ** 30;
const NONE = -1;

export class CallLedger {
  /** Per slot: clock value after which it has expired. */
  private deadline: Float64Array;
  /** Per slot: the account counter it holds a unit of (null when free). */
  private owner: (SlotOwner | null)[];
  /** Per slot: its generation, bumped when the slot is freed. */
  private generation: Float64Array;
  /** Expiry order: a doubly linked list of live slots, oldest at head. */
  private prev: Int32Array;
  private next: Int32Array;
  private head = NONE;
  private tail = NONE;
  /** Free slot numbers (a stack) and the count of never-used ones handed out so far. */
  private free: Int32Array;
  private freeTop = 0;
  private fresh = 0;
  private live = 0;
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
    this.max = Math.min(SLOT_SPACE, Math.max(1, opts.maxLiveCalls ?? 131_072));
    const n = Math.min(this.max, INITIAL_SLOTS);
    this.deadline = new Float64Array(n);
    this.owner = new Array<SlotOwner | null>(n).fill(null);
    this.generation = new Float64Array(n);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
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

  /** Takes a slot for one call of the account; returns its handle. */
  take(account: string | SlotOwner, now: number): number {
    this.advance(now);
    if (this.live >= this.max) this.drop(this.head); // the least recently touched
    const c = typeof account === 'string' || account.detached ? this.counter(typeof account === 'string' ? account : account.account) : account;
    c.live++;
    const slot = this.alloc();
    this.deadline[slot] = this.clock + this.ttl;
    this.owner[slot] = c;
    this.append(slot);
    this.live++;
    return this.generation[slot] * SLOT_SPACE + slot;
  }

  /** Gives the slot back; safe to call any number of times, and with a stale or unknown handle. */
  release(handle: number): void {
    const slot = this.slotOf(handle);
    if (slot !== NONE) this.drop(slot);
  }

  /** In-dialog activity: restarts the backstop timer (an already expired slot stays gone). */
  touch(handle: number, now: number): void {
    this.advance(now);
    const slot = this.slotOf(handle);
    if (slot === NONE) return;
    if (this.deadline[slot] < this.clock) {
      this.drop(slot);
      return;
    }
    this.deadline[slot] = this.clock + this.ttl;
    // Move to the tail so the list's order stays the expiry order.
    this.unlink(slot);
    this.append(slot);
  }

  /** True while the handle's slot is held (taken, not released, not expired). */
  has(handle: number): boolean {
    const slot = this.slotOf(handle);
    if (slot === NONE) return false;
    if (this.deadline[slot] >= this.clock) return true;
    this.drop(slot);
    return false;
  }

  /** Live slots of an account. */
  count(account: string): number {
    return this.counters.get(account)?.live ?? 0;
  }

  /** Live slots in total. */
  get size(): number {
    return this.live;
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
      while (this.head !== NONE && this.deadline[this.head] < this.clock) this.drop(this.head);
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

  /** The slot a handle names while it is taken, else NONE. */
  private slotOf(handle: number): number {
    if (!(handle >= 0)) return NONE;
    const slot = handle % SLOT_SPACE;
    if (slot >= this.fresh || this.owner[slot] === null) return NONE;
    return this.generation[slot] === (handle - slot) / SLOT_SPACE ? slot : NONE;
  }

  /** The one way a slot ends: its account gets the unit back, the number goes on the free list. */
  private drop(slot: number): void {
    const c = this.owner[slot];
    if (c === null) return;
    c.live--;
    this.owner[slot] = null;
    this.generation[slot] = (this.generation[slot] + 1) % GENERATIONS;
    this.unlink(slot);
    this.live--;
    this.free[this.freeTop++] = slot;
  }

  private append(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = NONE;
    if (this.tail === NONE) this.head = slot;
    else this.next[this.tail] = slot;
    this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
  }

  private alloc(): number {
    if (this.freeTop > 0) return this.free[--this.freeTop];
    if (this.fresh === this.deadline.length) this.grow();
    return this.fresh++;
  }

  private grow(): void {
    const n = Math.min(this.max, this.deadline.length * 2);
    const widen = <A extends Float64Array | Int32Array>(a: A, make: (n: number) => A): A => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.deadline = widen(this.deadline, (k) => new Float64Array(k));
    this.generation = widen(this.generation, (k) => new Float64Array(k));
    this.prev = widen(this.prev, (k) => new Int32Array(k));
    this.next = widen(this.next, (k) => new Int32Array(k));
    this.free = widen(this.free, (k) => new Int32Array(k));
    const owner = this.owner;
    for (let i = owner.length; i < n; i++) owner.push(null);
  }
}
