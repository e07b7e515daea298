import { performance } from 'node:perf_hooks';

/**
 * How late the event loop runs: the overload signal of a single-threaded proxy. When messages
 * arrive faster than they can be handled, every callback runs later and later; past a point the
 * UACs' retransmissions (RFC 3261 §17.1.1.2, Timer A) multiply the load and nothing completes.
 * A tick every `intervalMs` records how late it fired; between ticks, a loop blocked for longer
 * than the tick shows as time past the expected tick.
 */
export class EventLoopLag {
  private timer: NodeJS.Timeout | null = null;
  private expected = 0;
  private lastLagMs = 0;

  constructor(private readonly intervalMs = 20) {}

  start(): void {
    if (this.timer) return;
    this.expected = performance.now() + this.intervalMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lastLagMs = Math.max(0, now - this.expected);
      this.expected = now + this.intervalMs;
    }, this.intervalMs);
    // Measuring must never keep the process alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Milliseconds the loop is behind: the last tick's lateness, or how overdue the next tick is. */
  lagMs(now = performance.now()): number {
    return Math.max(this.lastLagMs, now - this.expected);
  }
}
