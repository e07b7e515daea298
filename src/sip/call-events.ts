/**
 * What every front end (embedded proxy, drachtio app) tells the rest of TollGuard about calls, and
 * how the rest of TollGuard can act on live calls. The fraud monitor and the attack-source defense
 * are written against these two interfaces only, so they work with either front end.
 */
import type { CallAttempt, Verdict } from '../core/types';
import type { Peer } from './policy';

/** One INVITE decision, admitted or rejected, after the core (or a screen) decided. */
export interface DecisionEvent {
  callId: string;
  attempt: CallAttempt;
  verdict: Verdict;
  peer: Peer;
  /** Wall-clock milliseconds (Date.now()) of the decision. */
  at: number;
}

/** The core's final answer to a customer's request (any method), seen on its way back. */
export interface UpstreamAnswerEvent {
  method: string;
  status: number;
  callId: string;
  peer: Peer;
  /** Digest username of the request's Authorization / Proxy-Authorization, if it carried one. */
  authUser?: string;
  /** User part of the To URI (the username a REGISTER is for, the extension an INVITE is for). */
  toUser?: string;
  fromUser?: string;
  userAgent?: string;
  at: number;
}

export type CallEndReason = 'rejected' | 'cancelled' | 'bye' | 'timeout' | 'error' | 'hangup';

/**
 * Observers are called synchronously on the hot path: they must be cheap and must not throw
 * (a throw is logged and ignored by the front end). Every method is optional.
 */
export interface CallObserver {
  decided?(e: DecisionEvent): void;
  /** A 2xx to an admitted initial INVITE passed (the call is up). */
  answered?(callId: string, at: number): void;
  /** An admitted call is over. May be reported more than once for one call. */
  ended?(callId: string, why: CallEndReason, at: number): void;
  upstreamAnswered?(e: UpstreamAnswerEvent): void;
  /**
   * Whether upstreamAnswered is wanted now (absent: always). Reading who a request claims to be
   * costs a front end header lookups and URI parses on every request; an observer that is switched
   * off by its rules (the defense without defense.yaml) says so here and costs nothing.
   */
  wantsUpstreamAnswers?(): boolean;
}

/** What is known of an admitted, not yet ended call. */
export interface LiveCall {
  callId: string;
  account: string;
  source: string;
  dialled: string;
  normalised?: string;
  international: boolean;
  /** Wall-clock ms of admission, and of the 2xx when the call is up. */
  admittedAt: number;
  answeredAt?: number;
}

export interface HangUpFilter {
  /** Only international (true) or only domestic (false) calls; all when absent. */
  international?: boolean;
  /** Only these calls. */
  callIds?: readonly string[];
}

/**
 * Acting on live calls: the fraud monitor ends an account's live international calls the moment
 * it is blocked, and watches call durations while calls are up.
 */
export interface CallControl {
  liveCalls(accountId?: string): LiveCall[];
  /**
   * Ends matching calls of the account: both legs get a BYE (answered calls) or the caller gets
   * a final answer and the core a CANCEL (ringing calls, where the front end can). Resolves to
   * the number of calls it ended.
   */
  hangUpCalls(accountId: string, filter?: HangUpFilter, reason?: string): Promise<number>;
}
