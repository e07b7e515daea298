import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeBenchRules } from './bench-rules';
import { cpuTicks } from './proc-cpu';
import { runBuiltinUac, startBuiltinUas } from './sipp-run';
import { ROOT } from './root';

/**
 * Guard CPU per call at one fixed call rate: (utime + stime of the guard process) / successful
 * calls, from /proc/<pid>/stat. On a shared machine this is steadier than the highest rate that
 * holds, so it is what changes to the proxy were judged by. Runs the same rules as proxy-bench.
 *
 *   npm run build && npx tsx bench/proxy-cpu.ts            # RATE=2000 SECS=8 REPS=3 DLOG=all
 *   DLOG=none npx tsx bench/proxy-cpu.ts                   # decision log off
 *   CLI=/path/to/other/dist/cli.js npx tsx bench/proxy-cpu.ts  # another build, for A/B
 */

const IP = '127.0.0.1';
const RATE = Number(process.env.RATE ?? 2000);
const SECS = Number(process.env.SECS ?? 8);
const REPS = Number(process.env.REPS ?? 3);

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-cpu-'));
  const rules = path.join(work, 'rules');
  fs.mkdirSync(rules);
  writeBenchRules(rules, 5000, process.env.DLOG ?? 'all');
  const uas = startBuiltinUas(work, IP, 17080, 600);
  const logFile = path.join(work, 'guard.log');
  const flags = (process.env.GUARD_NODE_FLAGS ?? '--single-threaded-gc').split(' ').filter(Boolean);
  const cli = process.env.CLI ?? path.join(ROOT, 'dist/cli.js');
  const guard = spawn(process.execPath, [...flags, cli, 'serve', '--rules', rules], { stdio: ['ignore', fs.openSync(logFile, 'w'), 'inherit'] });
  try {
    for (let waited = 0; !fs.readFileSync(logFile, 'utf8').includes('tollguard started'); waited += 100) {
      if (guard.exitCode !== null || waited > 15000) throw new Error('the guard did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    await runBuiltinUac(work, { target: `${IP}:17060`, ip: IP, port: 17200, rate: 1000, calls: 3000, service: '095550111', timeoutS: 30 });
    const perCall: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const before = cpuTicks(guard.pid!);
      const r = await runBuiltinUac(work, { target: `${IP}:17060`, ip: IP, port: 17201 + i, rate: RATE, calls: RATE * SECS, service: '095550111', timeoutS: SECS * 4 + 10 });
      const after = cpuTicks(guard.pid!);
      const us = ((after.user - before.user + after.system - before.system) * 1e4) / Math.max(1, r.successful);
      perCall.push(us);
      console.log(
        `${RATE} cps, decisions ${process.env.DLOG ?? 'all'}: ${r.successful} ok, ${r.failed} failed, ${r.retransmissions} retransmissions;` +
          ` guard CPU ${us.toFixed(0)} µs/call (user ${(((after.user - before.user) * 1e4) / Math.max(1, r.successful)).toFixed(0)})`,
      );
      await new Promise((r) => setTimeout(r, 500));
    }
    perCall.sort((a, b) => a - b);
    console.log(`median guard CPU per call: ${perCall[perCall.length >> 1].toFixed(0)} µs`);
  } finally {
    guard.kill('SIGTERM');
    uas.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
