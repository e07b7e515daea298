/**
 * The transactions' timers (RFC 3261 §17: A, B, C, D, E, F, G, H, I, J, K, plus RFC 6026's L and
 * M) without a Node timer, a closure and a bookkeeping array for each.
 *
 * A call sets a handful of these (A, B and C on the forwarded INVITE alone) and clears almost all
 * of them a few milliseconds later, when the answer comes. Each is an entry in the list of its
 * duration: entries of one duration expire in the order they were armed, so appending keeps the
 * list sorted, one Node timer armed for the list's head serves them all, and clearing an entry
 * is an unlink. An owner keeps its entries and reuses them when a timer is set again; when one
 * fires, the service calls one dispatch function with the owner and the timer's name.
 */

export type TimerName = 'A' | 'B' | 'C' | 'cancel' | 'G' | 'H' | 'admit' | 'end';

/** A transaction that has timers: the service keeps its entries here. */
export interface TimerOwner {
  timerEntries: TimerEntry[] | null;
}

export class TimerEntry {
  prev: TimerEntry | null = null;
  next: TimerEntry | null = null;
  /** Monotonic ms when it fires; its list when armed. */
  due = 0;
  list: TimerList | null = null;

  constructor(
    readonly owner: TimerOwner,
    readonly name: TimerName,
  ) {}
}

/** The armed entries of one duration, in expiry order, and the Node timer for the first. */
class TimerList {
  head: TimerEntry | null = null;
  tail: TimerEntry | null = null;
  size = 0;
  timer: NodeJS.Timeout | null = null;

  constructor(readonly ms: number) {}
}

export class TimerService<T extends TimerOwner> {
  private readonly lists = new Map<number, TimerList>();

  /** `fire` runs for each expired entry; it must not throw (the proxy wraps its handlers). */
  constructor(private readonly fire: (owner: T, name: TimerName) => void) {}

  /** Starts (or restarts) the owner's timer `name` to fire in `ms`. */
  set(owner: T, name: TimerName, ms: number): void {
    let e = entryOf(owner, name);
    if (e === undefined) {
      e = new TimerEntry(owner, name);
      (owner.timerEntries ??= []).push(e);
    } else if (e.list !== null) unlink(e);
    let list = this.lists.get(ms);
    if (list === undefined) {
      list = new TimerList(ms);
      this.lists.set(ms, list);
    }
    e.due = monotonicMs() + ms;
    e.list = list;
    e.prev = list.tail;
    e.next = null;
    if (list.tail !== null) list.tail.next = e;
    else list.head = e;
    list.tail = e;
    list.size++;
    if (list.timer === null) this.arm(list, ms);
  }

  /** Restarts a running timer with its own duration. Returns false when it is not running. */
  refresh(owner: T, name: TimerName): boolean {
    const e = entryOf(owner, name);
    if (e === undefined || e.list === null) return false;
    this.set(owner, name, e.list.ms);
    return true;
  }

  clear(owner: T, name: TimerName): void {
    const e = entryOf(owner, name);
    if (e !== undefined && e.list !== null) unlink(e);
  }

  has(owner: T, name: TimerName): boolean {
    const e = entryOf(owner, name);
    return e !== undefined && e.list !== null;
  }

  clearAll(owner: T): void {
    const entries = owner.timerEntries;
    if (entries === null) return;
    for (let i = 0; i < entries.length; i++) if (entries[i].list !== null) unlink(entries[i]);
  }

  /** Running timers of all owners. */
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

  private arm(list: TimerList, ms: number): void {
    list.timer = setTimeout(() => this.run(list), ms);
  }

  private run(list: TimerList): void {
    list.timer = null;
    // Node's timers run on the event loop's cached clock, which can be a millisecond behind
    // this one: an entry due within 1 ms is taken now rather than costing another turn.
    const now = monotonicMs() + 1;
    try {
      for (let e = list.head; e !== null && e.due <= now; e = list.head) {
        unlink(e);
        this.fire(e.owner as T, e.name);
      }
    } finally {
      const head = list.head;
      if (head !== null && list.timer === null) this.arm(list, Math.max(1, Math.ceil(head.due - monotonicMs())));
    }
  }
}

function entryOf(owner: TimerOwner, name: TimerName): TimerEntry | undefined {
  const entries = owner.timerEntries;
  if (entries === null) return undefined;
  for (let i = 0; i < entries.length; i++) if (entries[i].name === name) return entries[i];
  return undefined;
}

function unlink(e: TimerEntry): void {
  const list = e.list!;
  if (e.prev !== null) e.prev.next = e.next;
  else list.head = e.next;
  if (e.next !== null) e.next.prev = e.prev;
  else list.tail = e.prev;
  e.prev = null;
  e.next = null;
  e.list = null;
  list.size--;
}

/** The global performance clock, read at call time so that test fake timers, which replace it, stay consistent with setTimeout. */
function monotonicMs(): number {
  return globalThis.performance.now();
}
