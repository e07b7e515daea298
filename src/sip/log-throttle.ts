/**
 * Per-reason log rate limiting for the receive path: a flood of garbage or rejected packets must
 * not turn into a flood of log lines (and the disk I/O that goes with it).
 */
export class LogThrottle {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly perWindow = 20,
    private readonly windowMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether a line for `key` may be logged now. When a new window opens after suppression,
   * `suppressed` says how many lines of that key were swallowed in the last one.
   */
  take(key: string): { ok: boolean; suppressed: number } {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      if (!w && this.windows.size > 1000) this.windows.clear();
      w = { start: t, count: 0, suppressed: 0 };
      this.windows.set(key, w);
      w.count++;
      return { ok: true, suppressed };
    }
    if (w.count < this.perWindow) {
      w.count++;
      return { ok: true, suppressed: 0 };
    }
    w.suppressed++;
    return { ok: false, suppressed: 0 };
  }
}
