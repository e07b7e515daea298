import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { childrenOf, treeTicks } from './proc-cpu';
import { BENCH_ACCOUNT_SOURCES, BENCH_ALLOWED_SOURCES, benchPrefix } from './bench-rules';
import { ROOT } from './root';

/**
 * Issue 2's bar, measured in the same run instead of quoted: Kamailio 5.6 (Debian's package) in
 * front of the same sipp UAS, doing the guard's checks on the same traffic
 * (bench/kamailio-bar.cfg): the guard-wide CIDR list and the account's own (permissions), the
 * account by From user and its calls per second and per minute (htable), the dialled number to
 * E.164 digits and the same high-risk prefixes, longest match (mtree), Max-Forwards,
 * Record-Route, stateful relay (tm). It does less than the guard: no libphonenumber dial plan,
 * no concurrent-call count, no log line per decision.
 */

export interface KamailioBar {
  /** CPU ticks (utime + stime) of Kamailio's main process and all its children so far. */
  ticks(): number;
  stop(): void;
}

export function kamailioAvailable(): boolean {
  return spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** db_text escapes ':' inside values. */
const dbText = (s: string): string => s.replace(/:/g, '\\:');

function writeDb(dir: string, prefixes: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'version'), 'table_name(str) table_version(int)\nversion:1\nmtree:1\naddress:6\n');
  const mtree = ['id(int,auto) tprefix(string) tvalue(string)'];
  for (let i = 0; i < prefixes; i++) mtree.push(`${i + 1}:${benchPrefix(i)}:1`);
  fs.writeFileSync(path.join(dir, 'mtree'), mtree.join('\n') + '\n');
  const address = ['id(int,auto) grp(int) ip_addr(str) mask(int) port(int) tag(str,null)'];
  const add = (group: number, cidr: string): void => {
    const [ip, bits] = cidr.split('/');
    address.push(`${address.length}:${group}:${dbText(ip)}:${bits}:0:`);
  };
  for (const c of BENCH_ALLOWED_SOURCES) add(1, c);
  for (const c of BENCH_ACCOUNT_SOURCES) add(2, c);
  fs.writeFileSync(path.join(dir, 'address'), address.join('\n') + '\n');
}

/** Starts Kamailio on udp:127.0.0.1:port in front of upstream (host:port); resolves once its worker processes run. */
export async function startKamailioBar(work: string, opts: { port: number; upstream: string; prefixes: number; children: number }): Promise<KamailioBar> {
  const dir = path.join(work, 'kamailio');
  const db = path.join(dir, 'db');
  writeDb(db, opts.prefixes);
  const cfg = fs
    .readFileSync(path.join(ROOT, 'bench/kamailio-bar.cfg'), 'utf8')
    .replace(/\{\{PORT\}\}/g, String(opts.port))
    .replace(/\{\{UPSTREAM\}\}/g, opts.upstream)
    .replace(/\{\{DB\}\}/g, db)
    .replace(/\{\{CHILDREN\}\}/g, String(opts.children));
  fs.writeFileSync(path.join(dir, 'kamailio.cfg'), cfg);
  const log = path.join(dir, 'kamailio.log');
  const child: ChildProcess = spawn(
    'kamailio',
    ['-f', path.join(dir, 'kamailio.cfg'), '-DD', '-E', '-b', '4194304', '-m', '1024', '-M', '16', '-x', 'tlsf', '-X', 'tlsf', '-P', path.join(dir, 'pid'), '-w', dir],
    { stdio: ['ignore', 'ignore', fs.openSync(log, 'w')] },
  );
  const pid = child.pid!;
  // Main process, the UDP workers, the timers and the other helpers Kamailio forks.
  for (let waited = 0; childrenOf(pid).length < opts.children + 1; waited += 100) {
    if (child.exitCode !== null || waited > 10_000) {
      child.kill('SIGKILL');
      throw new Error(`kamailio did not start; its log:\n${fs.readFileSync(log, 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 500));
  return {
    ticks: () => treeTicks(pid),
    stop: () => child.kill('SIGTERM'),
  };
}
