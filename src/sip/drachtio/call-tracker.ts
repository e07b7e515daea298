import type { Logger } from 'winston';
import type { ForwardMode } from '../../rules/config-types';
import type { CallEndReason, HangUpFilter, LiveCall } from '../call-events';
import type { ObserverList } from './observers';

/** One admitted call the drachtio front end carries, in either forwarding mode. */
export interface TrackedCall {
  readonly info: LiveCall;
  readonly mode: ForwardMode;
  /**
   * Ends the call from the guard's side (both legs get BYE, or the ringing B leg a CANCEL).
   * Resolves false when this mode cannot end the call (proxy: drachtio-server owns the dialog).
   */
  hangUp(reason: string, why: 'hangup' | 'timeout'): Promise<boolean>;
}

/** What the tracker needs of the decision core: its concurrent-call slots, by handle (Verdict.slot). */
export interface SlotReleaser {
  release(slot: number): void;
  isAdmitted(slot: number): boolean;
}

/**
 * The live calls of the drachtio front end and the one place a call's end is handled: the slot
 * goes back to the core, observers hear of it once, the call leaves the table. Everything here
 * is idempotent, because a call can end from several sides at once (BYE racing a hang-up, a CDR
 * arriving after the proxy result).
 */
export class CallTracker {
  private readonly calls = new Map<string, TrackedCall>();
  /** The core's slot handle of each tracked call. */
  private readonly slots = new Map<string, number>();
  private readonly byAccount = new Map<string, Set<string>>();

  constructor(
    private readonly core: SlotReleaser,
    private readonly observers: ObserverList,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.calls.size;
  }

  admit(call: TrackedCall, slot: number): void {
    const { callId, account } = call.info;
    this.calls.set(callId, call);
    this.slots.set(callId, slot);
    let ids = this.byAccount.get(account);
    if (ids === undefined) this.byAccount.set(account, (ids = new Set()));
    ids.add(callId);
  }

  get(callId: string): TrackedCall | undefined {
    return this.calls.get(callId);
  }

  /** The slot a tracked call holds while the core still counts it (for a repeated INVITE). */
  heldSlot(callId: string): number | undefined {
    const slot = this.slots.get(callId);
    return slot !== undefined && this.core.isAdmitted(slot) ? slot : undefined;
  }

  /** True while the call is tracked and its slot is held by the core. */
  isAdmitted(callId: string): boolean {
    return this.heldSlot(callId) !== undefined;
  }

  /** The 2xx to the caller's INVITE went out: the call is up. */
  answered(callId: string): void {
    const call = this.calls.get(callId);
    if (call === undefined || call.info.answeredAt !== undefined) return;
    const at = this.now();
    call.info.answeredAt = at;
    this.observers.answered(callId, at);
  }

  /** The call is over for whatever reason; a second report is ignored. */
  finish(callId: string, why: CallEndReason): void {
    const call = this.calls.get(callId);
    if (call === undefined) return;
    this.calls.delete(callId);
    const ids = this.byAccount.get(call.info.account);
    ids?.delete(callId);
    if (ids?.size === 0) this.byAccount.delete(call.info.account);
    const slot = this.slots.get(callId);
    this.slots.delete(callId);
    if (slot !== undefined) this.core.release(slot);
    this.logger.debug({ message: 'call ended', callId, account: call.info.account, mode: call.mode, why });
    this.observers.ended(callId, why, this.now());
  }

  liveCalls(accountId?: string): LiveCall[] {
    const out: LiveCall[] = [];
    if (accountId === undefined) {
      for (const c of this.calls.values()) out.push({ ...c.info });
      return out;
    }
    for (const id of this.byAccount.get(accountId) ?? []) {
      const c = this.calls.get(id);
      if (c !== undefined) out.push({ ...c.info });
    }
    return out;
  }

  matching(accountId: string, filter: HangUpFilter = {}): TrackedCall[] {
    const wanted = filter.callIds !== undefined ? new Set(filter.callIds) : undefined;
    const out: TrackedCall[] = [];
    for (const id of this.byAccount.get(accountId) ?? []) {
      const c = this.calls.get(id);
      if (c === undefined) continue;
      if (filter.international !== undefined && c.info.international !== filter.international) continue;
      if (wanted !== undefined && !wanted.has(id)) continue;
      out.push(c);
    }
    return out;
  }
}
