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
    const line = {
      message: 'decision',
      method,
      callId,
      account: v.account ?? null,
      source: peer.address,
      transport: peer.transport,
      dialled: dialled || null,
      normalised: v.normalised ?? null,
      international: v.international ?? null,
      verdict: v.allow ? 'allow' : 'reject',
      status: v.allow ? null : v.status,
      rule: v.rule,
      detail: v.detail || null,
      us: Math.round(micros * 10) / 10,
    };
    if (this.sink === undefined) {
      this.logger.info(line);
      return;
    }
    if (!this.logger.isInfoEnabled() || this.logger.silent) return;
    // The line log.ts's lean format writes ({"time":..., fields..., "level":"info"}); an ISO time
    // needs no JSON escaping.
    this.sink.write(`{"time":"${this.isoNow()}",${JSON.stringify(line).slice(1, -1)},"level":"info"}`);
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
