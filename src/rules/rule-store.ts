/**
 * Holds the compiled rules in force and replaces them when the rule files change.
 *
 * A reload either swaps in a complete new CompiledRules in one assignment or changes nothing:
 * a broken edit never leaves the guard half-configured, and calls keep being judged by the last
 * good rules. Watching covers the ways files actually get replaced: in-place writes, editors that
 * save through a temp file and rename, Kubernetes ConfigMap symlink swaps, and the whole
 * directory being swapped for a new one (the watch is re-armed on the new directory).
 */
import { createHash } from 'crypto';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import type { Logger } from 'winston';
import { compileRules, type CompiledRules } from './compile';
import { RulesError } from './config-types';
import { RULE_FILES, loadRuleSet } from './load';

/** The subset of a winston logger the store writes to; structured entries, like the rest of the guard. */
export type RuleStoreLogger = Pick<Logger, 'error' | 'warn' | 'info' | 'debug'>;

export type ReloadResult = { ok: true } | { ok: false; error: RulesError };

export interface WatchOptions {
  /** Quiet time after the last file event before reloading; editors write in bursts. */
  debounceMs?: number;
  /** A burst that never goes quiet still reloads after this long. */
  maxWaitMs?: number;
  /** How often to check that the directory is still the one being watched. */
  recheckMs?: number;
}

export interface RuleStoreEvents {
  swapped: [next: CompiledRules, previous: CompiledRules, reason: string];
  rejected: [error: RulesError, reason: string];
}

export class RuleStore extends EventEmitter<RuleStoreEvents> {
  private rules: CompiledRules;
  /** Content hash of the files behind the last reload attempt, good or bad. */
  private lastSeen: string;
  private watcher?: fs.FSWatcher;
  private watchedIno?: number;
  private watchOpts?: Required<WatchOptions>;
  private debounceTimer?: NodeJS.Timeout;
  private burstStart?: number;
  private recheckTimer?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    readonly dir: string,
    rules: CompiledRules,
    fingerprint: string,
    private readonly logger?: RuleStoreLogger,
  ) {
    super();
    this.rules = rules;
    this.lastSeen = fingerprint;
  }

  /** Loads and compiles the rules; throws RulesError (every problem) if they are not usable. */
  static open(dir: string, logger?: RuleStoreLogger): RuleStore {
    const fingerprint = fingerprintOf(dir);
    const rules = compile(dir);
    return new RuleStore(dir, rules, fingerprint, logger);
  }

  /** The rules in force. Read it per decision; never cache it across a reload. */
  get current(): CompiledRules {
    return this.rules;
  }

  /**
   * Loads and compiles the rule files again and swaps them in if they are good. On failure the
   * rules in force stay, the problems are logged, and 'rejected' is emitted. Never throws.
   */
  reload(reason: string): ReloadResult {
    // Fingerprint before reading, so a write landing during the load shows up as a change later.
    this.lastSeen = fingerprintOf(this.dir);
    let next: CompiledRules;
    try {
      next = compile(this.dir);
    } catch (err) {
      const error = err as RulesError;
      this.logger?.error({
        message: `rules rejected (${reason}): ${plural(error.problems.length, 'problem')}; the previous rules stay in force`,
        rules: this.dir,
        reason,
        problems: error.problems.map((p) => `${p.at}: ${p.message}`),
      });
      this.safeEmit('rejected', error, reason);
      return { ok: false, error };
    }
    const previous = this.rules;
    this.rules = next;
    this.logger?.info({ message: `rules reloaded (${reason})`, rules: this.dir, reason, ...next.summary });
    this.safeEmit('swapped', next, previous, reason);
    return { ok: true };
  }

  /** Reloads on changes to the rules directory until close(). Idempotent. */
  watch(options: WatchOptions = {}): this {
    if (this.closed || this.watchOpts) return this;
    this.watchOpts = { debounceMs: 200, maxWaitMs: 2000, recheckMs: 2000, ...options };
    this.arm();
    // Picks up an edit made between open() and watch().
    this.schedule();
    this.recheckTimer = setInterval(() => this.guarded(() => this.recheckDir()), this.watchOpts.recheckMs);
    this.recheckTimer.unref();
    return this;
  }

  /** Stops watching; the rules in force stay readable. */
  close(): void {
    this.closed = true;
    this.disarm();
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.debounceTimer = this.recheckTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------

  private arm(): void {
    this.disarm();
    try {
      this.watchedIno = fs.statSync(this.dir).ino;
      // Watching the directory, not the files: a rename-save gives a file a new inode, and a
      // watch on the old file would go silent.
      const w = fs.watch(this.dir, { persistent: false }, (_event, filename) =>
        this.guarded(() => this.onEvent(filename === null ? null : String(filename))),
      );
      w.on('error', (err) =>
        this.guarded(() => {
          this.logger?.warn({ message: 'rules watcher failed; re-arming', rules: this.dir, error: String(err) });
          this.disarm();
        }),
      );
      this.watcher = w;
    } catch (err) {
      // The directory may be mid-replacement; recheckDir() retries on its next tick.
      this.watchedIno = undefined;
      this.logger?.warn({ message: 'cannot watch the rules directory; will retry', rules: this.dir, error: String(err) });
    }
  }

  private disarm(): void {
    if (this.watcher) {
      this.watcher.removeAllListeners();
      // A closed watcher can still deliver an 'error'; one without a listener would crash.
      this.watcher.on('error', () => undefined);
      this.watcher.close();
    }
    this.watcher = undefined;
    this.watchedIno = undefined;
  }

  private onEvent(filename: string | null): void {
    if (this.closed) return;
    this.logger?.debug({ message: 'rules directory changed', rules: this.dir, file: filename });
    this.schedule();
  }

  /** Trailing debounce with a ceiling: a burst of editor writes gives one reload. */
  private schedule(): void {
    const opts = this.watchOpts;
    if (!opts || this.closed) return;
    const now = Date.now();
    this.burstStart ??= now;
    const wait = Math.max(0, Math.min(opts.debounceMs, this.burstStart + opts.maxWaitMs - now));
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.guarded(() => this.settle()), wait);
  }

  private settle(): void {
    this.debounceTimer = undefined;
    this.burstStart = undefined;
    if (this.closed) return;
    this.recheckDir();
    const fingerprint = fingerprintOf(this.dir);
    // Swap files, backups and our own re-reads fire events too; only new content reloads, and
    // an unchanged broken file is not reported again on every unrelated event.
    if (fingerprint === this.lastSeen) return;
    this.reload('rule files changed');
  }

  /** Re-arms when the directory was replaced (new inode) or the watcher died. */
  private recheckDir(): void {
    if (this.closed) return;
    let ino: number | undefined;
    try {
      ino = fs.statSync(this.dir).ino;
    } catch {
      ino = undefined;
    }
    if (ino === undefined) {
      if (this.watcher) this.disarm();
      return;
    }
    if (this.watcher && ino === this.watchedIno) return;
    this.arm();
    // Whatever changed while nobody was watching is picked up now.
    this.schedule();
  }

  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // Watcher and timer callbacks run outside any caller; an exception there would take the
      // whole guard down over a rules edit.
      this.logger?.error({ message: 'rules watcher error', rules: this.dir, error: err instanceof Error ? err.stack : String(err) });
    }
  }

  private safeEmit<K extends keyof RuleStoreEvents>(event: K, ...args: RuleStoreEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: RuleStoreEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      // A failing listener must not turn an applied swap into a reported failure.
      this.logger?.error({ message: `a '${event}' listener failed`, error: err instanceof Error ? err.stack : String(err) });
    }
  }
}

/** Load + compile; anything thrown comes out as a RulesError. */
function compile(dir: string): CompiledRules {
  try {
    return compileRules(loadRuleSet(dir));
  } catch (err) {
    if (err instanceof RulesError) throw err;
    throw new RulesError([
      { at: dir, message: `internal error while compiling the rules: ${err instanceof Error ? err.message : String(err)}` },
    ]);
  }
}

function fingerprintOf(dir: string): string {
  const h = createHash('sha256');
  for (const name of Object.values(RULE_FILES)) {
    h.update(name);
    try {
      h.update('\0').update(fs.readFileSync(path.join(dir, name)));
    } catch (err) {
      h.update('\x01').update(String((err as NodeJS.ErrnoException).code));
    }
  }
  return h.digest('hex');
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
