import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Cumulative counters from sipp's -trace_stat CSV (last row). */
export interface SippCounts {
  outgoing: number;
  successful: number;
  failed: number;
  retransmissions: number;
  elapsedSeconds: number;
}

function parseDuration(hms: string): number {
  const [h, m, s] = hms.split(':').map(Number);
  return h * 3600 + m * 60 + s;
}

export function readSippStats(file: string): SippCounts {
  const rows = fs.readFileSync(file, 'utf8').trim().split('\n');
  const head = rows[0].split(';');
  const last = rows[rows.length - 1].split(';');
  const col = (name: string): string => {
    const i = head.indexOf(name);
    if (i < 0) throw new Error(`sipp stat file ${file} has no column ${name}`);
    return last[i];
  };
  return {
    outgoing: Number(col('OutgoingCall(C)')),
    successful: Number(col('SuccessfulCall(C)')),
    failed: Number(col('FailedCall(C)')),
    retransmissions: Number(col('Retransmissions(C)')),
    elapsedSeconds: parseDuration(col('ElapsedTime(C)')),
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
