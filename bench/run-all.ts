import { runCoreBench } from './core-bench';
import { runDefenseBench } from './defense-bench';
import { runProxyBench } from './proxy-bench';
import { runProxyInproc } from './proxy-inproc';

/** `npm run bench`: the decision core alone, the proxy's own work per call, the embedded proxy under sipp load, then the defense under a banned flood. */
async function main(): Promise<void> {
  console.log('== Decision core ==');
  await runCoreBench();
  console.log('\n== Embedded proxy, in process (no sockets) ==');
  await runProxyInproc();
  console.log('\n== Embedded proxy ==');
  await runProxyBench();
  console.log('\n== Defense: refusing banned sources ==');
  await runDefenseBench();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
