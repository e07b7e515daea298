import * as fs from 'node:fs';

/** USER_HZ: /proc reports CPU time in ticks of 1/100 s on Linux. */
export const TICKS_PER_SECOND = 100;

/** Fields of /proc/PID/stat after "(comm)", which may itself hold spaces; undefined once the process is gone. */
function statFields(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // ended: it has no CPU left to count and no parent to report
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime and stime of a process, in ticks; throws once it has ended (a measured process must not vanish unnoticed). */
export function cpuTicks(pid: number): { user: number; system: number } {
  const f = statFields(pid);
  if (f === undefined) throw new Error(`process ${pid} has ended: its CPU time cannot be read`);
  return { user: Number(f[11]), system: Number(f[12]) };
}

/** utime + stime of a process, in ticks. */
export function totalTicks(pid: number): number {
  const t = cpuTicks(pid);
  return t.user + t.system;
}

/** The processes whose parent is pid (Kamailio's workers, say). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f !== undefined && Number(f[1]) === pid) out.push(Number(name));
  }
  return out;
}

/** utime + stime of a process and its children, in ticks; children that ended between the listing and the read count nothing. */
export function treeTicks(pid: number): number {
  let sum = totalTicks(pid);
  for (const child of childrenOf(pid)) {
    const f = statFields(child);
    if (f !== undefined) sum += Number(f[11]) + Number(f[12]);
  }
  return sum;
}
