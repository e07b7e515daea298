/**
 * Harness for driving real sipp (3.6) from jest.
 *
 *   const uas = await startSippUas({ scenario: scenarioPath('uas-answer.xml'), localIp: '127.0.0.1', localPort: 15080, calls: 5 });
 *   const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: '127.0.0.1:15060', localIp: '127.0.0.1',
 *                             localPort: 15070, calls: 5, rate: 10, timeoutMs: 20_000 });
 *   expect(r.stats.successful).toBe(5);
 *   await uas.stop();
 *
 * Every run gets its own temp dir (sipp's trace files go there; it is removed afterwards unless
 * SIPP_KEEP=1) and is bounded twice: sipp's own -timeout (it quits by itself) and a hard kill a
 * few seconds later in case it hangs. Always give -p (localPort): sipp otherwise binds 5060.
 *
 * Stats come from sipp's -trace_stat CSV (cumulative "(C)" columns of the last line), so they
 * are exact counters, not screen scraping.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename, resolve } from 'node:path';

export const SCENARIO_DIR = resolve(__dirname, '..', 'scenarios');

/** Absolute path of a scenario in test/e2e/scenarios. */
export function scenarioPath(name: string): string {
  return join(SCENARIO_DIR, name);
}

export interface SippOptions {
  /** Scenario XML path, or "sn:uac" / "sn:uas" for sipp's built-in ones. */
  scenario: string;
  /**
   * Values for {{NAME}} / {{NAME|default}} placeholders in a template scenario (e.g.
   * uac-expect-status.xml needs STATUS). The rendered copy is written to the run's temp dir.
   */
  template?: Record<string, string | number>;
  /** host:port to send to (UAC). IPv6 as [::1]:port. */
  remote?: string;
  /** 'udp' (-t u1, default) or 'tcp' (-t t1). */
  transport?: 'udp' | 'tcp';
  /** -i: local IP to bind and to write in Via/Contact. */
  localIp?: string;
  /** -p: local port. Always set it (sipp defaults to 5060). */
  localPort?: number;
  /** -s: Request-URI user ([service]). */
  service?: string;
  /** -m: stop after this many calls. Default 1. */
  calls?: number;
  /** -r: calls per second (per -rp period). */
  rate?: number;
  /** -rp in ms (rate period). */
  ratePeriodMs?: number;
  /** -l: max concurrent calls. */
  limit?: number;
  /** sipp's global -timeout; the process is also killed 5 s after it. Default 30 s. */
  timeoutMs?: number;
  /** -set NAME VALUE: scenario variables. */
  vars?: Record<string, string | number>;
  /** -key NAME VALUE: [NAME] keywords in messages. */
  keys?: Record<string, string | number>;
  /** Keep sipp's -trace_msg log and return it in `messages`. */
  traceMessages?: boolean;
  /** -mp: first of the 4 media ports sipp binds. Default: a free block in 15900-15999. */
  mediaPort?: number;
  /** Extra raw arguments. */
  args?: string[];
}

export interface SippStats {
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  outOfCallMessages: number;
  deadCallMessages: number;
  failedUnexpectedMessage: number;
  failedMaxUdpRetrans: number;
  failedTimeoutOnRecv: number;
  failedCallRejected: number;
  /** Every column of the last CSV line, by header name ("SuccessfulCall(C)", ...). */
  raw: Record<string, string>;
}

export interface SippResult {
  /** 0: every call succeeded; 1: some failed; 97/99: stopped without calls; 255/254: fatal. null when killed. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stats: SippStats;
  /** Content of sipp's error log (-trace_err): unexpected messages, retransmission timeouts. */
  errors: string;
  /** Content of the -trace_msg log when traceMessages was set. */
  messages: string;
  /** Content of the final screen dump (-trace_screen). */
  screen: string;
  durationMs: number;
}

export interface SippProcess {
  readonly pid: number | undefined;
  /** Resolves once sipp has bound its local port. */
  ready: Promise<void>;
  /** Resolves when sipp exits (by itself, by -m/-timeout, or by stop()). */
  done: Promise<SippResult>;
  /** Asks sipp to finish (SIGUSR1: no new calls, current ones end), kills it if it lingers. */
  stop(graceMs?: number): Promise<SippResult>;
}

const OUTPUT_CAP = 256 * 1024;

function render(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z0-9_]+)(?:\|([^}]*))?\}\}/g, (_m, name: string, def: string | undefined) => {
    if (vars[name] !== undefined) return String(vars[name]);
    if (def !== undefined) return def;
    throw new Error(`scenario template needs ${name}`);
  });
}

/** Renders a template scenario into `dir` and returns the new path. */
export function renderScenario(path: string, vars: Record<string, string | number>, dir: string): string {
  const out = join(dir, basename(path).replace(/\.xml$/, '') + '.rendered.xml');
  writeFileSync(out, render(readFileSync(path, 'utf8'), vars));
  return out;
}

function buildArgs(o: SippOptions, dir: string): string[] {
  const args: string[] = [];
  if (o.scenario.startsWith('sn:')) args.push('-sn', o.scenario.slice(3));
  else args.push('-sf', o.template ? renderScenario(o.scenario, o.template, dir) : o.scenario);
  if (o.remote) args.push(o.remote);
  args.push('-t', o.transport === 'tcp' ? 't1' : 'u1');
  if (o.localIp) args.push('-i', o.localIp);
  if (o.localPort !== undefined) args.push('-p', String(o.localPort));
  if (o.service) args.push('-s', o.service);
  args.push('-m', String(o.calls ?? 1));
  if (o.rate !== undefined) args.push('-r', String(o.rate));
  if (o.ratePeriodMs !== undefined) args.push('-rp', String(o.ratePeriodMs));
  if (o.limit !== undefined) args.push('-l', String(o.limit));
  args.push('-timeout', `${Math.ceil((o.timeoutMs ?? 30_000) / 1000)}s`);
  for (const [k, v] of Object.entries(o.vars ?? {})) args.push('-set', k, String(v));
  for (const [k, v] of Object.entries(o.keys ?? {})) args.push('-key', k, String(v));
  args.push('-nostdin');
  // sipp binds media sockets (default 6000-6003) even when no RTP flows, and a clash is fatal.
  args.push('-mp', String(o.mediaPort ?? pickMediaPort()));
  args.push('-trace_stat', '-stf', join(dir, 'stats.csv'), '-fd', '1');
  args.push('-trace_err', '-error_file', join(dir, 'errors.log'));
  args.push('-trace_screen', '-screen_file', join(dir, 'screen.log'));
  if (o.traceMessages) args.push('-trace_msg', '-message_file', join(dir, 'messages.log'));
  args.push(...(o.args ?? []));
  return args;
}

function readIf(path: string): string {
  try {
    return existsSync(path) ? readFileSync(path, 'latin1') : '';
  } catch {
    return '';
  }
}

const MEDIA_BASE = 15900;
const MEDIA_BLOCKS = 25;
let mediaNext = process.pid % MEDIA_BLOCKS;

/** A block of 4 UDP ports (sipp's audio/video RTP and RTCP) that nothing has bound, from 15900-15999. */
function pickMediaPort(): number {
  for (let i = 0; i < MEDIA_BLOCKS; i++) {
    const base = MEDIA_BASE + 4 * (mediaNext++ % MEDIA_BLOCKS);
    let free = true;
    for (let p = base; p < base + 4 && free; p++) if (portBound('udp', p)) free = false;
    if (free) return base;
  }
  throw new Error('no free media port block in 15900-15999 for sipp');
}

/** Parses sipp's -trace_stat CSV: header line, then one line per dump; the last one counts. */
export function parseStatsCsv(csv: string): SippStats {
  const lines = csv.split('\n').filter((l) => l.trim().length > 0);
  const raw: Record<string, string> = {};
  if (lines.length >= 2) {
    const header = lines[0].split(';');
    const last = lines[lines.length - 1].split(';');
    header.forEach((h, i) => {
      if (h) raw[h] = last[i] ?? '';
    });
  }
  const n = (k: string): number => Number(raw[k] ?? 0) || 0;
  return {
    created: n('TotalCallCreated'),
    successful: n('SuccessfulCall(C)'),
    failed: n('FailedCall(C)'),
    retransmissions: n('Retransmissions(C)'),
    outOfCallMessages: n('OutOfCallMsgs(C)'),
    deadCallMessages: n('DeadCallMsgs(C)'),
    failedUnexpectedMessage: n('FailedUnexpectedMessage(C)'),
    failedMaxUdpRetrans: n('FailedMaxUDPRetrans(C)'),
    failedTimeoutOnRecv: n('FailedTimeoutOnRecv(C)'),
    failedCallRejected: n('FailedCallRejected(C)'),
    raw,
  };
}

function launch(o: SippOptions): SippProcess {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  let args: string[];
  try {
    args = buildArgs(o, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const started = Date.now();
  const child: ChildProcess = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (stdout.length < OUTPUT_CAP) stdout += d.toString('latin1');
  });
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < OUTPUT_CAP) stderr += d.toString('latin1');
  });
  const hardKill = setTimeout(() => child.kill('SIGKILL'), (o.timeoutMs ?? 30_000) + 5000);
  let exited = false;
  const done = new Promise<SippResult>((resolveDone) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      clearTimeout(hardKill);
      const result: SippResult = {
        exitCode: code,
        signal,
        stdout,
        stderr,
        stats: parseStatsCsv(readIf(join(dir, 'stats.csv'))),
        errors: readIf(join(dir, 'errors.log')),
        messages: readIf(join(dir, 'messages.log')),
        screen: readIf(join(dir, 'screen.log')),
        durationMs: Date.now() - started,
      };
      if (process.env.SIPP_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
      else result.stderr += `\n[sipp files kept in ${dir}]`;
      resolveDone(result);
    };
    child.on('exit', finish);
    child.on('error', (err) => {
      stderr += `\nspawn error: ${err.message}`;
      finish(null, null);
    });
  });
  const ready = waitBound(o, () => exited);
  return {
    pid: child.pid,
    ready,
    done,
    async stop(graceMs = 3000) {
      if (!exited) {
        child.kill('SIGUSR1');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const r = await done;
        clearTimeout(t);
        return r;
      }
      return done;
    },
  };
}

/**
 * Polls until sipp's local port shows up in /proc/net (UDP bound, or TCP in LISTEN). Reading the
 * kernel's socket tables does not disturb sipp, unlike probing by binding the port ourselves
 * (sipp could then fail to bind) or connecting to it (sipp would see a stray connection).
 */
async function waitBound(o: SippOptions, exited: () => boolean): Promise<void> {
  if (o.localPort === undefined) {
    await new Promise((r) => setTimeout(r, 300));
    return;
  }
  const transport = o.transport ?? 'udp';
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`sipp exited before binding ${transport} port ${o.localPort}`);
    if (portBound(transport, o.localPort)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sipp did not bind ${transport} port ${o.localPort} within 5 s`);
}

function portBound(transport: 'udp' | 'tcp', port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of transport === 'udp' ? ['/proc/net/udp', '/proc/net/udp6'] : ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readIf(file).split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      const local = cols[1];
      if (local.slice(local.lastIndexOf(':') + 1) !== hexPort) continue;
      if (transport === 'udp' || cols[3] === '0A') return true;
    }
  }
  return false;
}

/** Runs sipp to completion (until -m calls, -timeout, or failure) and returns what it did. */
export async function runSipp(o: SippOptions): Promise<SippResult> {
  return launch(o).done;
}

/**
 * Starts a sipp that keeps running in the background (typically a UAS standing in for the SIP
 * core) and waits until its port is bound. It stops by itself after `calls` calls or
 * `timeoutMs`; call stop() in afterEach/afterAll anyway.
 */
export async function startSippUas(o: SippOptions): Promise<SippProcess> {
  const p = launch(o);
  await p.ready;
  return p;
}

/** Human-readable summary for assertion messages. */
export function describeRun(r: SippResult): string {
  return [
    `exit=${r.exitCode} signal=${r.signal} ${r.durationMs}ms`,
    `stats: created=${r.stats.created} ok=${r.stats.successful} failed=${r.stats.failed} retrans=${r.stats.retransmissions} unexpected=${r.stats.failedUnexpectedMessage} maxRetrans=${r.stats.failedMaxUdpRetrans}`,
    r.errors ? `errors:\n${r.errors.slice(0, 3000)}` : '',
    r.stderr ? `stderr:\n${r.stderr.slice(0, 2000)}` : '',
  ].filter(Boolean).join('\n');
}
