/**
 * Request density per source and method over a sliding window, the idea of Kamailio's pike.
 *
 * Each source keeps two fixed buckets a method (this window and the last); the sliding count is
 * the current bucket plus the part of the previous bucket the window still overlaps. That is
 * exact for steady rates, never undercounts a burst by more than the last bucket's share, and
 * costs two small typed arrays a source. Sources live in an LRU bounded by max_sources, so a
 * spoofed-address flood cannot grow memory without limit (it only forgets the quietest sources).
 */
import { LRUCache } from 'lru-cache';

interface SourceWindow {
  /** Start (ms) of the current bucket. */
  start: number;
  current: Uint32Array;
  previous: Uint32Array;
}

export interface FloodSettings {
  windowSeconds: number;
  /** Requests a window by method; `default` for any method not named. */
  limits: Readonly<Record<string, number>>;
  maxSources: number;
}

export interface FloodHit {
  method: string;
  /** Sliding count that crossed the limit. */
  count: number;
  limit: number;
  windowSeconds: number;
}

export class FloodDetector {
  private readonly sources: LRUCache<string, SourceWindow>;
  private readonly slotOf = new Map<string, number>();
  private readonly limitOfSlot: number[] = [];
  private readonly windowMs: number;
  private readonly defaultSlot: number;

  constructor(readonly settings: FloodSettings) {
    this.windowMs = settings.windowSeconds * 1000;
    for (const [method, limit] of Object.entries(settings.limits)) {
      if (method === 'default') continue;
      this.slotOf.set(method, this.limitOfSlot.length);
      this.limitOfSlot.push(limit);
    }
    this.defaultSlot = this.limitOfSlot.length;
    this.limitOfSlot.push(settings.limits.default ?? Infinity);
    this.sources = new LRUCache({ max: settings.maxSources });
  }

  /** Counts one request; returns the evidence when this source just went over its limit. */
  count(address: string, method: string, at: number): FloodHit | undefined {
    const slot = this.slotOf.get(method) ?? this.defaultSlot;
    let w = this.sources.get(address);
    if (w === undefined) {
      const n = this.limitOfSlot.length;
      w = { start: at, current: new Uint32Array(n), previous: new Uint32Array(n) };
      this.sources.set(address, w);
    }
    // Arrival times come from several sockets and batches, so one may be a little older than the
    // bucket already started: it counts in the current bucket.
    const now = at < w.start ? w.start : at;
    const elapsed = now - w.start;
    if (elapsed >= this.windowMs) {
      // One bucket on: the current becomes the previous; two or more: both are stale.
      if (elapsed < 2 * this.windowMs) w.previous.set(w.current);
      else w.previous.fill(0);
      w.current.fill(0);
      w.start = now - (elapsed % this.windowMs);
    }
    const c = ++w.current[slot];
    const overlap = 1 - (now - w.start) / this.windowMs;
    const count = c + w.previous[slot] * overlap;
    const limit = this.limitOfSlot[slot];
    if (count <= limit) return undefined;
    return { method, count: Math.round(count), limit, windowSeconds: this.settings.windowSeconds };
  }

  forget(address: string): void {
    this.sources.delete(address);
  }

  get trackedSources(): number {
    return this.sources.size;
  }
}
