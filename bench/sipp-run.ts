import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseStatsCsv } from '../test/e2e/helpers/sipp';

/** Cumulative counters of one sipp run, from its -trace_stat CSV. */
export interface SippCounts {
  outgoing: number;
  successful: number;
  failed: number;
  retransmissions: number;
}

export function readSippStats(file: string): SippCounts {
  const stats = parseStatsCsv(fs.readFileSync(file, 'utf8'));
  if (stats.raw['OutgoingCall(C)'] === undefined) throw new Error(`sipp stat file ${file} has no counters`);
  return {
    outgoing: Number(stats.raw['OutgoingCall(C)']),
    successful: stats.successful,
    failed: stats.failed,
    retransmissions: stats.retransmissions,
  };
}

/** sipp's built-in UAS standing in for the SIP core; bounded by -timeout so it always ends. */
export function startBuiltinUas(workDir: string, ip: string, port: number, timeoutS: number): ChildProcess {
  const child = spawn(
    'sipp',
    ['-sn', 'uas', '-i', ip, '-p', String(port), '-nostdin', '-buff_size', '8388608', '-timeout', `${timeoutS}s`],
    { cwd: workDir, stdio: 'ignore' },
  );
  return child;
}

/** One bounded burst of calls from sipp's built-in UAC; resolves with its counters. */
export function runBuiltinUac(
  workDir: string,
  opts: { target: string; ip: string; port: number; rate: number; calls: number; service: string; timeoutS: number },
): Promise<SippCounts & { exitCode: number | null }> {
  const stat = path.join(workDir, `uac-${opts.port}-${opts.rate}.csv`);
  const args = [
    '-sn', 'uac', opts.target,
    '-i', opts.ip, '-p', String(opts.port),
    '-s', opts.service,
    '-r', String(opts.rate), '-m', String(opts.calls),
    '-l', String(Math.max(100, opts.rate * 4)),
    '-nostdin', '-buff_size', '8388608',
    '-timeout', `${opts.timeoutS}s`, '-timeout_error',
    '-trace_stat', '-stf', stat, '-fd', '1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('sipp', args, { cwd: workDir, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        resolve({ ...readSippStats(stat), exitCode: code });
      } catch (err) {
        reject(err);
      }
    });
  });
}
