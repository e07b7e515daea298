import { runCoreBench } from './core-bench';
import { runProxyBench } from './proxy-bench';

/** `npm run bench`: the decision core alone, then the embedded proxy under sipp load. */
async function main(): Promise<void> {
  console.log('== Decision core ==');
  await runCoreBench();
  console.log('\n== Embedded proxy ==');
  await runProxyBench();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
