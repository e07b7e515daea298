import { runCoreBench } from './core-bench';
import { runProxyBench } from './proxy-bench';
import { runProxyInproc } from './proxy-inproc';

/** `npm run bench`: the decision core alone, the proxy's own work per call, then the embedded proxy under sipp load. */
async function main(): Promise<void> {
  console.log('== Decision core ==');
  await runCoreBench();
  console.log('\n== Embedded proxy, in process (no sockets) ==');
  await runProxyInproc();
  console.log('\n== Embedded proxy ==');
  await runProxyBench();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
