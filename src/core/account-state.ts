import type { SlotOwner } from './call-ledger';
import { RateWindow } from './rate-limiter';

/**
 * What the core keeps of one configured account between its calls: the admits of its rate
 * windows (this is a RateWindow) and the count of its live calls (this is the SlotOwner the
 * ledger decrements when a slot ends). One object, because with 100 000 accounts every separate
 * per-account object is one more cache miss a decision (bench/core-bench.ts).
 */
export class AccountState extends RateWindow implements SlotOwner {
  live = 0;
  /** Never set: only the ledger's own LiveCounters are dropped and detached by the ledger. */
  readonly detached = false;

  constructor(readonly account: string) {
    super();
  }
}
