'use strict';
/**
 * npm's "install" step (package.json): builds the native UDP addon, native/udp_batch.c →
 * build/Release/udp_batch.node, with the node-gyp bundled in npm.
 *
 * npm's default install step for a package with a binding.gyp is `node-gyp rebuild`, and a failure
 * there fails `npm ci`. The addon is optional: without it (not Linux, no compiler) the embedded
 * proxy stays on node:dgram, and src/sip/udp-batch.ts tells why. So a failed build prints one
 * warning line and exits 0. node-gyp's output goes to build/udp_batch-install.log either way.
 *
 * TOLLGUARD_NO_NATIVE=1 skips the build (same warning line). Any build/Release/udp_batch.node
 * left from before is removed whenever the warning is printed, so the warning stays true.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const addon = path.join('build', 'Release', 'udp_batch.node');
const logFile = path.join('build', 'udp_batch-install.log');

function warn(why) {
  // Whatever an earlier install left must not outlive this one: the line below says dgram.
  fs.rmSync(path.join(root, addon), { force: true });
  console.warn(`tollguard: WARNING: native UDP addon not built (${why}); the embedded proxy will use node:dgram`);
  process.exit(0);
}

function writeLog(text) {
  try {
    fs.mkdirSync(path.join(root, 'build'), { recursive: true });
    fs.writeFileSync(path.join(root, logFile), text);
  } catch {
    // the log is a convenience; the warning line says what matters
  }
}

if (process.env.TOLLGUARD_NO_NATIVE && process.env.TOLLGUARD_NO_NATIVE !== '0') warn('TOLLGUARD_NO_NATIVE is set');
if (process.platform !== 'linux') warn(`it needs Linux (recvmmsg/sendmmsg), this is ${process.platform}`);

// npm passes the path of its bundled node-gyp to lifecycle scripts; outside npm, look beside node.
const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const nodeGyp = process.env.npm_config_node_gyp || (fs.existsSync(bundled) ? bundled : undefined);
if (!nodeGyp) warn('node-gyp not found: run this through npm');

const args = [nodeGyp, 'rebuild'];
// node-gyp takes the headers from npm's nodedir config (npm_config_nodedir) when it is set, and
// downloads them otherwise. When it is not set but the running node's headers are installed beside
// it (Debian's nodejs, the official Docker images), use those: no download, and the exact version.
if (!process.env.npm_config_nodedir) {
  const prefix = path.join(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${path.resolve(prefix)}`);
}

const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
writeLog(`$ ${process.execPath} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.stack}` : ''}\n`);
if (r.error) warn(`cannot run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  const reason = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
  warn(`node-gyp rebuild failed, ${reason}; see ${logFile}`);
}
try {
  require(path.join(root, addon));
} catch (e) {
  warn(`${addon} was built but does not load: ${e instanceof Error ? e.message : String(e)}`);
}
console.log(`tollguard: built ${addon} (batched UDP I/O for the embedded proxy)`);
