/**
 * The transactions' timers (RFC 3261 §17: A, B, C, D, E, F, G, H, I, J, K, plus RFC 6026's L and
 * M) without a Node timer, a closure and a bookkeeping array for each.
 *
 * A call sets a handful of these (A, B and C on the forwarded INVITE alone) and clears almost all
 * of them a few milliseconds later, when the answer comes. At any moment a transaction needs at
 * most two: a retransmission timer (A, E or G) and a deadline (B, C, F, H, the end of its
 * lingering, ...), so it owns two slots, made with it and reused. An armed slot sits in the list
 * of its duration: slots of one duration expire in the order they were armed, so appending keeps
 * the list sorted, one Node timer armed for the list's head serves them all, and clearing a slot
 * is an unlink. When one fires, the service calls one dispatch function with the owner and the
 * timer's name.
 */

export type TimerName = 'A' | 'B' | 'C' | 'cancel' | 'G' | 'H' | 'admit' | 'end';

/**
 * One of a transaction's two timers: where it is linked while armed, and what it is. A transaction
 * extends this class for its deadline (one object less for each of the ~100,000 transactions a
 * busy proxy holds) and makes a second slot for retransmissions only while it needs one.
 */
export class TimerSlot<T> {
  prev: TimerSlot<T> | null = null;
  next: TimerSlot<T> | null = null;
  /** Whole monotonic ms when it fires (whole, so V8 stores it inline, not as a heap number). */
  due = 0;
  list: TimerList<T> | null = null;
  name: TimerName = 'end';

  readonly owner: T;

  /** A slot of `owner`; without one, the slot is its own owner (a transaction that is its deadline slot). */
  constructor(owner?: T) {
    this.owner = owner ?? (this as unknown as T);
  }

  get armed(): boolean {
    return this.list !== null;
  }
}

/** The armed slots of one duration, in expiry order, and the Node timer for the first. */
class TimerList<T> {
  head: TimerSlot<T> | null = null;
  tail: TimerSlot<T> | null = null;
  size = 0;
  timer: NodeJS.Timeout | null = null;

  constructor(readonly ms: number) {}
}

export class TimerService<T> {
  private readonly lists = new Map<number, TimerList<T>>();

  /** `fire` runs for each expired slot; it must not throw (the proxy wraps its handlers). */
  constructor(private readonly fire: (owner: T, name: TimerName) => void) {}

  /** Arms `slot` as timer `name`, to fire in `ms` (replacing whatever it was armed as). */
  set(slot: TimerSlot<T>, name: TimerName, ms: number): void {
    if (slot.list !== null) unlink(slot);
    let list = this.lists.get(ms);
    if (list === undefined) {
      list = new TimerList<T>(ms);
      this.lists.set(ms, list);
    }
    slot.name = name;
    slot.due = Math.ceil(monotonicMs()) + ms;
    slot.list = list;
    slot.prev = list.tail;
    slot.next = null;
    if (list.tail !== null) list.tail.next = slot;
    else list.head = slot;
    list.tail = slot;
    list.size++;
    if (list.timer === null) this.arm(list, ms);
  }

  /** Disarms `slot`, or only when it is armed as `name` if given. */
  clear(slot: TimerSlot<T>, name?: TimerName): void {
    if (slot.list !== null && (name === undefined || slot.name === name)) unlink(slot);
  }

  /** Whether `slot` is armed as `name`. */
  has(slot: TimerSlot<T>, name: TimerName): boolean {
    return slot.list !== null && slot.name === name;
  }

  /** Armed slots of all owners. */
  get size(): number {
    let n = 0;
    for (const list of this.lists.values()) n += list.size;
    return n;
  }

  /** Drops every timer without firing it (proxy stop). */
  stop(): void {
    for (const list of this.lists.values()) {
      if (list.timer !== null) clearTimeout(list.timer);
      list.timer = null;
      while (list.head !== null) unlink(list.head);
    }
  }

  private arm(list: TimerList<T>, ms: number): void {
    list.timer = setTimeout(() => this.run(list), ms);
  }

  private run(list: TimerList<T>): void {
    list.timer = null;
    // Node's timers run on the event loop's cached clock, which can be a millisecond behind
    // this one: a slot due within 1 ms is taken now rather than costing another turn.
    const now = monotonicMs() + 1;
    try {
      for (let s = list.head; s !== null && s.due <= now; s = list.head) {
        unlink(s);
        this.fire(s.owner, s.name);
      }
    } finally {
      const head = list.head;
      if (head !== null && list.timer === null) this.arm(list, Math.max(1, Math.ceil(head.due - monotonicMs())));
    }
  }
}

function unlink<T>(s: TimerSlot<T>): void {
  const list = s.list!;
  if (s.prev !== null) s.prev.next = s.next;
  else list.head = s.next;
  if (s.next !== null) s.next.prev = s.prev;
  else list.tail = s.prev;
  s.prev = null;
  s.next = null;
  s.list = null;
  list.size--;
}

/** The global performance clock, read at call time so that test fake timers, which replace it, stay consistent with setTimeout. */
function monotonicMs(): number {
  return globalThis.performance.now();
}
