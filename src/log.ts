import winston from 'winston';
import { MESSAGE } from 'triple-beam';

/**
 * Structured JSON logs, one object per line.
 *
 * winston's stock `combine(timestamp(), json())` costs ~16 µs a line on this machine (measured
 * with 200k lines to /dev/null); a single format step that stamps the time and calls
 * JSON.stringify costs ~3.6 µs. The decision log runs once per call on the hot path, so it
 * uses the lean format.
 */
const leanJson = winston.format((info) => {
  const line: Record<string, unknown> = { time: new Date().toISOString(), ...info };
  (info as Record<string | symbol, unknown>)[MESSAGE] = JSON.stringify(line);
  return info;
});

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export function createLogger(level: LogLevel = 'info', stream: NodeJS.WritableStream = process.stdout): winston.Logger {
  const logger = winston.createLogger({
    level,
    format: leanJson(),
    transports: [new winston.transports.Stream({ stream })],
  });
  sinks.set(logger, new LineSink(stream));
  return logger;
}

/**
 * A direct way to append ready-made JSON lines to a createLogger() logger's stream, for the one
 * line per call of the decision log. Going through winston costs ~20 µs a line in the proxy
 * (object spread, a Transform stream, the transport's _write, then one write() and, for a file
 * or pipe on stdout, one write system call per line); here the caller builds the same line
 * (JSON.stringify, same keys, same order as the lean format) and lines written in one turn of the
 * event loop go out in a single write(). Measured under sipp load in
 * bench/proxy-bench.ts (figures in the README). Lines are flushed on setImmediate, when
 * 64 KiB are pending, and at process exit.
 */
export class LineSink {
  private pending = '';
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly stream: NodeJS.WritableStream) {}

  write(line: string): void {
    this.pending += line + '\n';
    if (this.pending.length >= 65_536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      unflushed.add(this);
      setImmediate(this.flushNow);
    }
  }

  flush(): void {
    this.scheduled = false;
    unflushed.delete(this);
    if (this.pending.length === 0) return;
    const text = this.pending;
    this.pending = '';
    this.stream.write(text);
  }
}

/** Sinks holding lines, so a process.exit() between a write and its setImmediate loses none. */
const unflushed = new Set<LineSink>();
process.on('exit', () => {
  for (const s of [...unflushed]) s.flush();
});

const sinks = new WeakMap<winston.Logger, LineSink>();

/** The direct line sink of a logger made by createLogger(); undefined for any other logger. */
export function lineSinkOf(logger: winston.Logger): LineSink | undefined {
  return sinks.get(logger);
}

/** A logger that writes nowhere, for tests and benchmarks that do not read logs. */
export function silentLogger(): winston.Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
