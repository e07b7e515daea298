/**
 * A feed of known-bad SIP sources in APIBAN's JSON format, polled over HTTP(S).
 *
 * The protocol, as APIBAN's own clients speak it: GET <url>/<ID> answers
 * `{"ipaddress": ["192.0.2.1", ...], "ID": "<next ID>"}` with up to a page of new bans; the client
 * asks again with the returned ID until the answer's ID is "none" (APIBAN sends that with HTTP
 * 400 and `"ipaddress": ["no new bans"]`). The first poll starts from ID 100 (the whole list);
 * later polls start from the last ID, so only changes travel.
 *
 * A poll is all or nothing: an outage, a timeout, a non-JSON body or an entry that is not an IP
 * address discards that poll, logs why, and keeps the last good list and ID. Addresses age out
 * `keep` after they were last listed (the feed announces bans, not their end).
 */
import type { Logger } from 'winston';
import { FAMILY_NONE, parseIp } from '../core/ip';

export interface ApibanSettings {
  url: string;
  intervalSeconds: number;
  timeoutSeconds: number;
  keepSeconds: number;
}

const FIRST_ID = '100';
/** A runaway feed (an ID that never reaches "none") must not loop forever. */
const MAX_PAGES = 200;

export class FeedError extends Error {}

interface Page {
  ips: string[];
  id: string;
}

export class ApibanFeed {
  private lastId = FIRST_ID;
  /** Address → last time (ms) the feed listed it. */
  private readonly seen = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Outcome of the last poll, for tests and logs. */
  lastPoll: { ok: boolean; at: number; added?: number; error?: string } | undefined;

  constructor(
    private settings: ApibanSettings,
    private readonly publish: (addresses: ReadonlySet<string>) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Polls now, then every interval, until stop(). */
  start(): void {
    this.schedule(0);
  }

  /** New settings from a rules reload; a new URL starts over from the whole list. */
  update(next: ApibanSettings): void {
    if (next.url !== this.settings.url) {
      this.lastId = FIRST_ID;
      this.seen.clear();
      this.publish(new Set());
    }
    const intervalChanged = next.intervalSeconds !== this.settings.intervalSeconds;
    this.settings = next;
    if (intervalChanged && !this.running) this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  get size(): number {
    return this.seen.size;
  }

  /** One poll (exported for tests); never throws. */
  async pollOnce(): Promise<void> {
    const started = this.now();
    try {
      const pages = await this.fetchAll();
      const now = this.now();
      let added = 0;
      for (const p of pages) {
        for (const ip of p.ips) {
          if (!this.seen.has(ip)) added++;
          this.seen.set(ip, now);
        }
      }
      if (pages.length > 0) this.lastId = pages[pages.length - 1].id;
      const cutoff = now - this.settings.keepSeconds * 1000;
      for (const [ip, at] of this.seen) if (at < cutoff) this.seen.delete(ip);
      this.publish(new Set(this.seen.keys()));
      this.lastPoll = { ok: true, at: now, added };
      if (added > 0) this.log.info({ message: 'apiban feed updated', added, listed: this.seen.size, id: this.lastId });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.lastPoll = { ok: false, at: started, error };
      this.log.error({ message: 'apiban feed poll failed; keeping the last good list', url: redact(this.settings.url), id: this.lastId, listed: this.seen.size, error });
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.pollOnce().finally(() => {
        this.running = undefined;
        this.schedule(this.settings.intervalSeconds * 1000);
      });
    }, ms);
    this.timer.unref();
  }

  private async fetchAll(): Promise<Page[]> {
    const pages: Page[] = [];
    let id = this.lastId;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await this.fetchPage(id);
      if (page === 'done') return pages;
      pages.push(page);
      id = page.id;
    }
    throw new FeedError(`more than ${MAX_PAGES} pages in one poll; stopping at ID ${id}`);
  }

  private async fetchPage(id: string): Promise<Page | 'done'> {
    const url = `${this.settings.url.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.settings.timeoutSeconds * 1000), headers: { accept: 'application/json' } });
    } catch (err) {
      throw new FeedError(`GET ${redact(url)} failed: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new FeedError(`GET ${redact(url)}: HTTP ${res.status}, not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
    const b = body as { ID?: unknown; ipaddress?: unknown };
    if (typeof body !== 'object' || body === null || typeof b.ID !== 'string' || b.ID === '') {
      throw new FeedError(`GET ${redact(url)}: HTTP ${res.status}, answer without an ID`);
    }
    if (b.ID === 'none') return 'done';
    if (b.ID === 'unauthorized') throw new FeedError(`GET ${redact(url)}: the feed says unauthorized (check the key in the URL)`);
    if (res.status !== 200) throw new FeedError(`GET ${redact(url)}: HTTP ${res.status}`);
    if (!Array.isArray(b.ipaddress)) throw new FeedError(`GET ${redact(url)}: "ipaddress" is not a list`);
    const words = new Uint32Array(4);
    for (const ip of b.ipaddress) {
      if (typeof ip !== 'string' || parseIp(ip, words) === FAMILY_NONE) {
        throw new FeedError(`GET ${redact(url)}: ${JSON.stringify(ip)} is not an IP address`);
      }
    }
    return { ips: b.ipaddress as string[], id: b.ID };
  }
}

/** APIBAN puts the API key in the path; logs should not carry it. */
function redact(url: string): string {
  return url.replace(/(\/api\/)[^/]+/, '$1***');
}
