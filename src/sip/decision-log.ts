import type { Logger } from 'winston';
import type { Verdict } from '../core/types';
import { lineSinkOf, type LineSink } from '../log';
import type { Peer } from './policy';

export type DecisionLogMode = 'all' | 'rejects' | 'none';

/**
 * One JSON line per INVITE decision, the same for every front end (embedded proxy, drachtio), so
 * log pipelines need not know which one ran: account, source, dialled and normalised number,
 * verdict, the rule that decided, and the microseconds it took.
 *
 * With a createLogger() logger the line skips winston's pipeline and goes out through its
 * LineSink (one write per event-loop turn; see log.ts), which took the decision log from the
 * largest to a small share of the guard's CPU per call (README, benchmarks). Other loggers get it
 * through winston.
 */
export class DecisionLog {
  private readonly sink: LineSink | undefined;

  constructor(
    private readonly logger: Logger,
    private mode: DecisionLogMode = 'all',
  ) {
    this.sink = lineSinkOf(logger);
  }

  setMode(mode: DecisionLogMode): void {
    this.mode = mode;
  }

  write(method: string, callId: string, peer: Peer, dialled: string, v: Verdict, micros: number): void {
    if (this.mode === 'none' || (this.mode === 'rejects' && v.allow)) return;
    if (this.sink === undefined) {
      this.logger.info(decisionFields(method, callId, peer, dialled, v, micros));
      return;
    }
    if (!this.infoEnabled()) return;
    this.sink.write(decisionLine(this.isoNow(), method, callId, peer, dialled, v, micros));
  }

  private checkedLevel: string | undefined;
  private checkedSilent: boolean | undefined;
  private enabled = false;

  /**
   * Whether the logger writes info lines, asked of winston again only when its level or silence
   * changed: isInfoEnabled() walks the transports and allocates, once per call otherwise.
   */
  private infoEnabled(): boolean {
    const { level, silent } = this.logger;
    if (level !== this.checkedLevel || silent !== this.checkedSilent) {
      this.checkedLevel = level;
      this.checkedSilent = silent;
      this.enabled = this.logger.isInfoEnabled() && !silent;
    }
    return this.enabled;
  }

  private isoMs = -1;
  private iso = '';

  /** The current time as ISO text, formatted once per millisecond (calls come thousands a second). */
  private isoNow(): string {
    const ms = Date.now();
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
  }
}

/** The decision as log fields, in the order of the line (see decisionLine). */
export function decisionFields(method: string, callId: string, peer: Peer, dialled: string, v: Verdict, micros: number): Record<string, unknown> {
  return {
    message: 'decision',
    method,
    callId: clipped(callId),
    account: v.account ?? null,
    source: peer.address,
    transport: peer.transport,
    dialled: dialled ? clipped(dialled) : null,
    normalised: v.normalised ?? null,
    international: v.international ?? null,
    verdict: v.allow ? 'allow' : 'reject',
    status: v.allow ? null : v.status,
    rule: v.rule,
    detail: v.detail || null,
    us: Math.round(micros * 10) / 10,
  };
}

/**
 * The line log.ts's lean format would write for decisionFields() ({"time":..., fields...,
 * "level":"info"}), built as text: JSON.stringify of the fields object was the larger part of a
 * decision's cost. Strings from the network (Call-ID, dialled number) and from rule files go
 * through jsonText(), which escapes exactly as JSON.stringify does (a unit test compares the two).
 */
export function decisionLine(time: string, method: string, callId: string, peer: Peer, dialled: string, v: Verdict, micros: number): string {
  return (
    `{"time":"${time}","message":"decision","method":${jsonText(method)},"callId":${jsonText(clipped(callId))}` +
    `,"account":${v.account === undefined ? 'null' : jsonText(v.account)},"source":${jsonText(peer.address)}` +
    `,"transport":${jsonText(peer.transport)},"dialled":${dialled ? jsonText(clipped(dialled)) : 'null'}` +
    `,"normalised":${v.normalised === undefined ? 'null' : jsonText(v.normalised)}` +
    `,"international":${v.international === undefined ? 'null' : v.international}` +
    `,"verdict":"${v.allow ? 'allow' : 'reject'}","status":${v.allow ? 'null' : JSON.stringify(v.status)}` +
    `,"rule":${jsonText(v.rule)},"detail":${v.detail ? jsonText(v.detail) : 'null'}` +
    `,"us":${JSON.stringify(Math.round(micros * 10) / 10)},"level":"info"}`
  );
}

/** Longest Call-ID or dialled string a decision line carries whole. */
export const LOGGED_TEXT_MAX = 128;

/**
 * Call-ID and dialled string come from the network and may be tens of KB long: a line carries
 * their first LOGGED_TEXT_MAX characters and the length, so an attacker cannot make each decision
 * write 60 KB of log.
 */
export function clipped(s: string): string {
  return s.length <= LOGGED_TEXT_MAX ? s : `${s.slice(0, LOGGED_TEXT_MAX)}...(${s.length} chars)`;
}

/** JSON.stringify(s): quoted as is when nothing in it needs escaping (the usual case). */
export function jsonText(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // '"', '\\', controls, and surrogates (JSON.stringify escapes lone ones)
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}
