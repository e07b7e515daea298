import * as fs from 'node:fs';
import * as path from 'node:path';

const IP = '127.0.0.1';
const UAS_PORT = 17080;
const GUARD_PORT = 17060;

/** A bench guard.yaml: the guard on udp:127.0.0.1:guardPort in front of a UAS on uasPort, NZ, unknown callers refused. */
export function writeGuardYaml(dir: string, ports: { guard: number; uas: number }, allowedSources: string, more: string[]): void {
  fs.writeFileSync(
    path.join(dir, 'guard.yaml'),
    [
      'sip:',
      `  listen: [udp:${IP}:${ports.guard}]`,
      `  upstream: ${IP}:${ports.uas}`,
      'home_country: NZ',
      `allowed_sources: ${allowedSources}`,
      'unknown_caller: reject',
      ...more,
    ].join('\n') + '\n',
  );
}

/** The proxy bench's guard-wide allowed_sources (the Kamailio bar loads the same list). */
export const BENCH_ALLOWED_SOURCES = ['127.0.0.0/8', '27.111.12.0/24', '10.0.0.0/8', '2001:db8::/32'];
/** The bench account's own allowed_sources. */
export const BENCH_ACCOUNT_SOURCES = ['127.0.0.0/8'];
/** The i-th high-risk range of the proxy bench, in E.164 digits without the +: ranges the bench numbers never hit. */
export const benchPrefix = (i: number): string => String(880000 + i);

/** The proxy benchmarks' rules: one account (sipp) and `prefixes` high-risk ranges no call hits. */
export function writeBenchRules(dir: string, prefixes: number, decisions = process.env.BENCH_DECISION_LOG ?? 'all'): void {
  writeGuardYaml(dir, { guard: GUARD_PORT, uas: UAS_PORT }, JSON.stringify(BENCH_ALLOWED_SOURCES), [
    'log:',
    `  decisions: ${decisions}`,
  ]);
  fs.writeFileSync(
    path.join(dir, 'accounts.yaml'),
    [
      'defaults:',
      '  international: true',
      '  limits: { calls_per_second: 100000, calls_per_minute: 6000000, concurrent_calls: 100000 }',
      'accounts:',
      '  sipp:',
      '    users: [sipp]',
      `    allowed_sources: ${JSON.stringify(BENCH_ACCOUNT_SOURCES)}`,
    ].join('\n') + '\n',
  );
  // Prefixes the bench numbers never hit, so every call walks the trie and is allowed.
  const lines: string[] = [];
  for (let i = 0; i < prefixes; i++) lines.push(`- { prefix: "+${benchPrefix(i)}", name: "Bench range ${i}" }`);
  fs.writeFileSync(path.join(dir, 'high-risk-destinations.yaml'), lines.join('\n') + '\n');
}
