import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The repository root (the folder holding package.json), found upwards from this file, so the
 * benches find dist/cli.js and rules/ whether they run from bench/ (tsx) or compiled from
 * dist-bench/bench/ (npm run bench).
 */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const ROOT = findRoot(__dirname);
