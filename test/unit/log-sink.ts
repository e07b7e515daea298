import { Writable } from 'node:stream';
import { createLogger, type LogLevel } from '../../src/log';

/** A logger whose JSON lines the test can read back, parsed, in `lines`. */
export function logSink(level: LogLevel = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, logger: createLogger(level, sink) };
}
