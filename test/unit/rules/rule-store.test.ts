import * as fs from 'fs';
import type { CompiledRules } from '../../../src/rules/compile';
import { RulesError } from '../../../src/rules/config-types';
import { RuleStore, type RuleStoreLogger } from '../../../src/rules/rule-store';
import { GOOD_ACCOUNTS, fileOf, lineWith, makeRulesDir, removeDir, renameSave, writeRule } from './helpers';

const WAIT_MS = 5000;
const BROKEN_ACCOUNTS = GOOD_ACCOUNTS + '    limits: { calls_per_minute: ten }\n';
const THREE_ACCOUNTS = GOOD_ACCOUNTS + '  carol:\n    users: ["carol"]\n';

interface LogEntry {
  level: string;
  entry: Record<string, unknown>;
}

function recordingLogger(): { logger: RuleStoreLogger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: string) => (entry: unknown) => {
    entries.push({ level, entry: entry as Record<string, unknown> });
  };
  // Only the structured-object form is used by the store.
  const logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } as unknown as RuleStoreLogger;
  return { logger, entries };
}

/** Resolves with the event's arguments, or rejects after a bounded wait. */
function next<E extends 'swapped' | 'rejected'>(store: RuleStore, event: E, ms = WAIT_MS): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      store.off(event, onEvent as never);
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    function onEvent(...args: unknown[]) {
      clearTimeout(timer);
      resolve(args);
    }
    store.once(event, onEvent as never);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let store: RuleStore | undefined;

beforeEach(() => {
  dir = makeRulesDir({ accounts: GOOD_ACCOUNTS });
});

afterEach(() => {
  store?.close();
  store = undefined;
  removeDir(dir);
});

describe('RuleStore.open', () => {
  it('compiles the rules in the directory', () => {
    store = RuleStore.open(dir);
    expect(store.current.summary.accounts).toBe(2);
    expect(store.current.guard.home_country).toBe('NZ');
  });

  it('throws RulesError with every problem when the first load fails', () => {
    writeRule(dir, 'accounts', BROKEN_ACCOUNTS);
    writeRule(dir, 'guard', 'sip: [\n');
    let error: unknown;
    try {
      RuleStore.open(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RulesError);
    const ats = (error as RulesError).problems.map((p) => p.at);
    expect(ats.some((a) => a.startsWith(fileOf(dir, 'guard')))).toBe(true);
    expect(ats).toContain(`${fileOf(dir, 'accounts')}:${lineWith(BROKEN_ACCOUNTS, 'ten')}`);
  });
});

describe('reload() (what SIGHUP calls)', () => {
  it('swaps in good rules atomically and emits swapped(next, previous)', () => {
    const { logger, entries } = recordingLogger();
    store = RuleStore.open(dir, logger);
    const before = store.current;
    const swapped: unknown[][] = [];
    store.on('swapped', (...args) => swapped.push(args));

    writeRule(dir, 'accounts', THREE_ACCOUNTS);
    expect(store.reload('SIGHUP')).toEqual({ ok: true });

    expect(store.current).not.toBe(before);
    expect(store.current.summary.accounts).toBe(3);
    expect(swapped).toHaveLength(1);
    expect(swapped[0][0]).toBe(store.current);
    expect(swapped[0][1]).toBe(before);
    expect(entries.some((e) => e.level === 'info' && String(e.entry.message).includes('SIGHUP'))).toBe(true);
  });

  it('keeps the previous rules in force on a broken edit, logs every problem and emits rejected', () => {
    const { logger, entries } = recordingLogger();
    store = RuleStore.open(dir, logger);
    const before = store.current;
    const rejected: unknown[][] = [];
    store.on('rejected', (...args) => rejected.push(args));

    writeRule(dir, 'accounts', BROKEN_ACCOUNTS);
    writeRule(dir, 'guard', fs.readFileSync(fileOf(dir, 'guard'), 'utf8').replace('home_country: NZ', 'home_country: XX'));
    const result = store.reload('SIGHUP');

    expect(result.ok).toBe(false);
    const error = (result as { ok: false; error: RulesError }).error;
    expect(error).toBeInstanceOf(RulesError);
    expect(error.problems).toHaveLength(2);
    expect(store.current).toBe(before);
    expect(rejected).toHaveLength(1);
    expect(rejected[0][0]).toBe(error);

    const logged = entries.find((e) => e.level === 'error');
    expect(logged?.entry.problems).toEqual(error.problems.map((p) => `${p.at}: ${p.message}`));
  });

  it('a throwing listener does not turn an applied swap into a failure', () => {
    store = RuleStore.open(dir, recordingLogger().logger);
    store.on('swapped', () => {
      throw new Error('listener bug');
    });
    writeRule(dir, 'accounts', THREE_ACCOUNTS);
    expect(store.reload('SIGHUP')).toEqual({ ok: true });
    expect(store.current.summary.accounts).toBe(3);
  });
});

describe('watch()', () => {
  it('rejects a broken edit (previous rules stay) and then swaps in a good one', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 50 });
    const before = store.current;

    const rejected = next(store, 'rejected');
    writeRule(dir, 'accounts', BROKEN_ACCOUNTS);
    const [error] = (await rejected) as [RulesError];
    expect(error.problems).toEqual([
      {
        at: `${fileOf(dir, 'accounts')}:${lineWith(BROKEN_ACCOUNTS, 'ten')}`,
        message: 'accounts.bob.limits.calls_per_minute: expected a positive integer, got "ten"',
      },
    ]);
    expect(store.current).toBe(before);

    const swapped = next(store, 'swapped');
    renameSave(dir, 'accounts', THREE_ACCOUNTS);
    const [current, previous] = (await swapped) as [CompiledRules, CompiledRules];
    expect(previous).toBe(before);
    expect(current).toBe(store.current);
    expect(store.current.summary.accounts).toBe(3);
  });

  it('coalesces a burst of writes into one reload', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 150 });
    let swaps = 0;
    let rejects = 0;
    store.on('swapped', () => swaps++);
    store.on('rejected', () => rejects++);
    const swapped = next(store, 'swapped');
    // An editor truncating and rewriting: intermediate states are broken or partial.
    // Spaced well inside the debounce, so only a debounce (not luck) keeps them to one reload.
    for (const text of ['', THREE_ACCOUNTS.slice(0, 40), BROKEN_ACCOUNTS, THREE_ACCOUNTS]) {
      writeRule(dir, 'accounts', text);
      await sleep(30);
    }
    await swapped;
    await sleep(400);
    expect(swaps).toBe(1);
    expect(rejects).toBe(0);
    expect(store.current.summary.accounts).toBe(3);
  });

  it('ignores events that do not change the rule files', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 50 });
    let events = 0;
    store.on('swapped', () => events++);
    store.on('rejected', () => events++);
    fs.writeFileSync(`${dir}/.accounts.yaml.swp`, 'editor junk');
    writeRule(dir, 'accounts', GOOD_ACCOUNTS); // same content
    await sleep(400);
    expect(events).toBe(0);
  });

  it('re-arms when the directory itself is replaced', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 50, recheckMs: 100 });
    const old = `${dir}.old`;
    fs.renameSync(dir, old);
    try {
      const swapped = next(store, 'swapped');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(old)) fs.copyFileSync(`${old}/${f}`, `${dir}/${f}`);
      writeRule(dir, 'accounts', THREE_ACCOUNTS);
      await swapped;
      expect(store.current.summary.accounts).toBe(3);

      // And the new directory is really watched: a further edit is seen.
      const rejected = next(store, 'rejected');
      writeRule(dir, 'accounts', BROKEN_ACCOUNTS);
      await rejected;
      expect(store.current.summary.accounts).toBe(3);
    } finally {
      removeDir(old);
    }
  });

  it('re-arms when the directory comes back after being gone for a while', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 50, recheckMs: 100 });
    const before = store.current;
    const old = `${dir}.old`;
    fs.renameSync(dir, old);
    try {
      // Long enough for the debounced handler to find no directory and drop the watch.
      await sleep(300);
      expect(store.current).toBe(before);
      const swapped = next(store, 'swapped');
      fs.mkdirSync(dir);
      for (const f of fs.readdirSync(old)) fs.copyFileSync(`${old}/${f}`, `${dir}/${f}`);
      writeRule(dir, 'accounts', THREE_ACCOUNTS);
      await swapped;
      expect(store.current.summary.accounts).toBe(3);
    } finally {
      removeDir(old);
    }
  });

  it('stops reacting after close()', async () => {
    store = RuleStore.open(dir).watch({ debounceMs: 50 });
    const before = store.current;
    store.close();
    writeRule(dir, 'accounts', THREE_ACCOUNTS);
    await sleep(300);
    expect(store.current).toBe(before);
  });
});
