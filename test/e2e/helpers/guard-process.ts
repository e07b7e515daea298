import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const CLI = path.join(ROOT, 'dist/cli.js');

export type LogLine = Record<string, unknown> & { message?: string; level?: string };

/** The built guard (dist/cli.js) running as its own process, as a carrier would run it. */
export interface GuardProcess {
  child: ChildProcess;
  logs: LogLine[];
  stderr(): string;
  /** Resolves with the first log line (present or future) that matches. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  decisions(): LogLine[];
  /**
   * The decision lines after the first `since`, once at least `count` of them have arrived. The
   * guard writes its decision lines once per event-loop turn, after the SIP answer has gone out,
   * so a test that just saw sipp finish must wait for them rather than read them at once.
   */
  decisionsAfter(since: number, count?: number, timeoutMs?: number): Promise<LogLine[]>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startGuard(args: string[], timeoutMs = 15000): Promise<GuardProcess> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const child = spawn(process.execPath, ['--single-threaded-gc', CLI, 'serve', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let err = '';
  let partial = '';
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!line.trim()) continue;
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        parsed = { message: 'unparsed', raw: line };
      }
      logs.push(parsed);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i].match(parsed)) {
          waiters[i].resolve(parsed);
          waiters.splice(i, 1);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLog = (match: (l: LogLine) => boolean, ms = 10000): Promise<LogLine> => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${ms} ms; stderr: ${err}`)), ms);
      waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  };

  const started = waitForLog((l) => l.message === 'tollguard started', timeoutMs);
  const early = exited.then((code) => {
    throw new Error(`guard exited early (code ${code}): ${err}`);
  });
  await Promise.race([started, early]);
  early.catch(() => undefined);

  return {
    child,
    logs,
    stderr: () => err,
    waitForLog,
    decisions: () => logs.filter((l) => l.message === 'decision'),
    async decisionsAfter(since: number, count = 1, ms = 3000) {
      const end = Date.now() + ms;
      for (;;) {
        const after = logs.filter((l) => l.message === 'decision').slice(since);
        if (after.length >= count) return after;
        if (Date.now() > end) throw new Error(`expected ${count} decision line(s) after the first ${since}, got ${after.length} within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A rules directory of its own for one test, from YAML texts. */
export function makeRulesDir(files: { guard: string; accounts: string; highRisk?: string }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-rules-'));
  fs.writeFileSync(path.join(dir, 'guard.yaml'), files.guard);
  fs.writeFileSync(path.join(dir, 'accounts.yaml'), files.accounts);
  fs.writeFileSync(
    path.join(dir, 'high-risk-destinations.yaml'),
    files.highRisk ?? fs.readFileSync(path.join(ROOT, 'rules/high-risk-destinations.yaml'), 'utf8'),
  );
  return dir;
}
