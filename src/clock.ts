import { performance } from 'node:perf_hooks';

/**
 * Milliseconds on a clock that never steps backwards (performance.now() anchored at process start),
 * so an NTP correction cannot open or shut a rate-limit window. Close to Date.now() in value.
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
