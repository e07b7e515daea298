import { spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBuiltinUac, startBuiltinUas } from './sipp-run';
import { SqliteBanStore } from '../src/store/ban-store';
import { openDatabase } from '../src/store/sqlite';
import { TICKS_PER_SECOND, totalTicks } from './proc-cpu';
import { ROOT } from './root';
import { writeGuardYaml } from './bench-rules';

/**
 * The defense under a flood from banned sources, with the built guard in its own process:
 *
 *  1. refusal capacity: UDP requests from banned sources as fast as this process can send them;
 *     the guard's CPU time (utime+stime) over the requests it actually read (sent minus the
 *     kernel's socket drops) gives refusals per CPU-second, i.e. on one core. Baseline in the
 *     same run: the same flood from an address outside allowed_sources and not banned (in
 *     never_ban, so it is not banned mid-run), which the guard parses and answers 403.
 *  2. legitimate calls (sipp uac → guard → sipp uas) with and without a paced banned flood.
 *
 * Loopback ports 18700-18799 only. Every flood is bounded in packets and seconds.
 */

const IP = '127.0.0.1';
const GUARD_PORT = 18700;
const UAS_PORT = 18780;
const FLOOD_SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 5);
const MAX_PACKETS = 5_000_000;
const BANNED = ['127.0.0.200', '127.0.0.201', '127.0.0.202', '127.0.0.203'];
const UNBANNED = ['127.0.0.210', '127.0.0.211', '127.0.0.212', '127.0.0.213'];
/** Bans in the store besides the flood sources, so the lookup is not into a tiny map. */
const OTHER_BANS = 100_000;
const CALL_RATE = Number(process.env.BENCH_DEFENSE_CPS ?? 200);
const PACED_FLOOD_PPS = Number(process.env.BENCH_DEFENSE_FLOOD_PPS ?? 20_000);

function writeRules(dir: string, db: string): void {
  // The flood addresses (127.0.0.200+) are outside allowed_sources.
  writeGuardYaml(dir, { guard: GUARD_PORT, uas: UAS_PORT }, '[127.0.0.0/25]', ['log: { decisions: rejects }', `store: { path: ${db} }`]);
  fs.writeFileSync(
    path.join(dir, 'accounts.yaml'),
    'defaults:\n  international: true\naccounts:\n  sipp:\n    users: [sipp]\n    allowed_sources: [127.0.0.0/25]\n',
  );
  fs.writeFileSync(path.join(dir, 'high-risk-destinations.yaml'), '- { prefix: "+252", name: Somalia }\n');
  fs.writeFileSync(
    path.join(dir, 'defense.yaml'),
    // never_ban keeps the baseline sources from being banned by the flood check mid-run.
    `never_ban: [${UNBANNED.join(', ')}]\nflood:\n  window_seconds: 2\n  limits: { default: 100000 }\n`,
  );
  fs.copyFileSync(path.join(ROOT, 'rules/scanner-fingerprints.yaml'), path.join(dir, 'scanner-fingerprints.yaml'));
}

function seedBans(db: string): void {
  const d = openDatabase(db);
  const store = new SqliteBanStore(d);
  const now = Date.now();
  const day = 86_400_000;
  d.transaction(() => {
    for (const address of BANNED) {
      store.add({ address, reason: 'flood', detail: 'bench', evidence: {}, appliedAt: now, expiresAt: now + day, offence: 1 });
    }
    for (let i = 0; i < OTHER_BANS; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      store.add({ address, reason: 'scanner', detail: 'bench', evidence: {}, appliedAt: now, expiresAt: now + day, offence: 1 });
    }
  })();
  d.close();
}

const TICK_S = 1 / TICKS_PER_SECOND;

/** Datagrams the kernel dropped on the guard's UDP socket (last column of /proc/net/udp). */
function socketDrops(port: number): number {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const line = fs.readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.trim().split(/\s+/)[1] === hex);
  if (!line) throw new Error(`the guard's socket ${IP}:${port} is not in /proc/net/udp`);
  const cols = line.trim().split(/\s+/);
  return Number(cols[cols.length - 1]);
}

function floodPacket(from: string, i: number): Buffer {
  return Buffer.from(
    [
      `OPTIONS sip:probe@${IP}:${GUARD_PORT} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from}:5060;branch=z9hG4bK-flood${i}`,
      'Max-Forwards: 70',
      `From: <sip:flood@${from}>;tag=f${i}`,
      `To: <sip:probe@${IP}>`,
      `Call-ID: flood-${i}@${from}`,
      'CSeq: 1 OPTIONS',
      'User-Agent: Grandstream GXP2170',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

/** Sends from `sources` for `seconds` (or MAX_PACKETS), at most `pps` a second; returns packets sent. */
async function flood(sources: string[], seconds: number, pps = Infinity): Promise<number> {
  const socks = await Promise.all(
    sources.map(
      (s) =>
        new Promise<dgram.Socket>((resolve, reject) => {
          const sock = dgram.createSocket('udp4');
          sock.once('error', reject);
          sock.bind(0, s, () => resolve(sock));
        }),
    ),
  );
  const packets = sources.map((s, i) => Array.from({ length: 64 }, (_, j) => floodPacket(s, i * 64 + j)));
  let sent = 0;
  const start = Date.now();
  const end = start + seconds * 1000;
  const batch = 128;
  while (Date.now() < end && sent < MAX_PACKETS) {
    if (pps !== Infinity && sent > ((Date.now() - start) / 1000) * pps) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    for (let k = 0; k < batch; k++) {
      const i = sent % socks.length;
      socks[i].send(packets[i][sent & 63], GUARD_PORT, IP);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const s of socks) s.close();
  return sent;
}

interface FloodResult {
  sent: number;
  kernelDrops: number;
  read: number;
  cpuSeconds: number;
  perCpuSecond: number;
  offeredPps: number;
}

async function measureFlood(guardPid: number, sources: string[]): Promise<FloodResult> {
  const drops0 = socketDrops(GUARD_PORT);
  const cpu0 = totalTicks(guardPid);
  const t0 = Date.now();
  const sent = await flood(sources, FLOOD_SECONDS);
  const wall = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300)); // let the guard drain its socket
  const cpuSeconds = (totalTicks(guardPid) - cpu0) * TICK_S;
  const kernelDrops = socketDrops(GUARD_PORT) - drops0;
  const read = sent - kernelDrops;
  return { sent, kernelDrops, read, cpuSeconds, perCpuSecond: read / Math.max(cpuSeconds, TICK_S), offeredPps: sent / wall };
}

async function calls(work: string, port: number, withFlood: boolean): Promise<{ completed: number; total: number; floodSent: number }> {
  const total = CALL_RATE * FLOOD_SECONDS;
  const uac = runBuiltinUac(work, {
    target: `${IP}:${GUARD_PORT}`,
    ip: IP,
    port,
    rate: CALL_RATE,
    calls: total,
    service: '095550111',
    timeoutS: FLOOD_SECONDS * 4 + 10,
  });
  const floodSent = withFlood ? await flood(BANNED, FLOOD_SECONDS, PACED_FLOOD_PPS) : 0;
  const r = await uac;
  return { completed: r.successful, total, floodSent };
}

export async function runDefenseBench(): Promise<Record<string, number | string>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-defense-bench-'));
  const rulesDir = path.join(work, 'rules');
  fs.mkdirSync(rulesDir);
  const db = path.join(work, 'tollguard.db');
  writeRules(rulesDir, db);
  seedBans(db);
  const uas = startBuiltinUas(work, IP, UAS_PORT, 600);
  const logFile = path.join(work, 'guard.log');
  const guard: ChildProcess = spawn(process.execPath, ['--single-threaded-gc', path.join(ROOT, 'dist/cli.js'), 'serve', '--rules', rulesDir], {
    stdio: ['ignore', fs.openSync(logFile, 'w'), 'inherit'],
  });
  try {
    for (let waited = 0; !fs.readFileSync(logFile, 'utf8').includes('tollguard started'); waited += 100) {
      if (guard.exitCode !== null || waited > 15000) throw new Error(`the guard did not start: ${fs.readFileSync(logFile, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const started = fs.readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('defense started'));
    const activeBans = started ? (JSON.parse(started) as { activeBans: number }).activeBans : NaN;

    const banned = await measureFlood(guard.pid!, BANNED);
    const baseline = await measureFlood(guard.pid!, UNBANNED);
    const quiet = await calls(work, 18710, false);
    const loud = await calls(work, 18711, true);

    console.log(`\nRefusing a flood of OPTIONS (${FLOOD_SECONDS} s, 4 sources, sent as fast as one Node process can; ${activeBans} bans in force)`);
    console.log('sources                          sent     kernel drops  read by guard  guard CPU s  refused per CPU-second');
    for (const [name, r] of [
      ['banned (dropped before parsing)', banned],
      ['not banned, outside allowed (403)', baseline],
    ] as const) {
      console.log(
        `${name.padEnd(33)}${String(r.sent).padStart(8)}  ${String(r.kernelDrops).padStart(12)}  ${String(r.read).padStart(13)}  ${r.cpuSeconds.toFixed(2).padStart(11)}  ${r.perCpuSecond.toFixed(0).padStart(22)}`,
      );
    }
    const result = {
      banned_refusals_per_cpu_second: Math.round(banned.perCpuSecond),
      baseline_403_refusals_per_cpu_second: Math.round(baseline.perCpuSecond),
      ratio_banned_to_baseline: +(banned.perCpuSecond / baseline.perCpuSecond).toFixed(1),
      banned_flood_offered_pps: Math.round(banned.offeredPps),
      calls_completed_without_flood: `${quiet.completed}/${quiet.total} at ${CALL_RATE} cps`,
      calls_completed_during_flood: `${loud.completed}/${loud.total} at ${CALL_RATE} cps, ${loud.floodSent} banned requests at ~${PACED_FLOOD_PPS}/s`,
      completion_during_flood_pct: +((100 * loud.completed) / loud.total).toFixed(2),
    };
    console.table(result);
    return result;
  } finally {
    guard.kill('SIGTERM');
    uas.kill('SIGTERM');
  }
}

if (require.main === module) {
  runDefenseBench().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
