#!/usr/bin/env -S node --single-threaded-gc
import { Command, InvalidArgumentError } from 'commander';
import { registerBanCommands } from './admin/ban-commands';
import { checkRules } from './rules/check';
import { startGuard } from './serve-drachtio';
import { createLogger } from './log';
import { RulesError } from './rules/config-types';
import { registerAccountCommands } from './admin/account-commands';

const program = new Command();
program.name('tollguard').description('SIP toll-fraud guard: an inline INVITE guard in front of a SIP core');

function list(value: string): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

program
  .command('serve')
  .description('run the guard (embedded SIP proxy) with the rules in DIR')
  .option('--rules <dir>', 'rules directory', 'rules')
  .option('--listen <specs>', 'override sip.listen, e.g. udp:0.0.0.0:5060,tcp:0.0.0.0:5060', list)
  .option('--upstream <host:port>', 'override sip.upstream (the SIP core)')
  .option('--drachtio <host:port>', 'run as a drachtio-srf app connecting to drachtio-server (instead of the embedded proxy)')
  .option('--drachtio-listen <[ip:]port>', 'run as a drachtio-srf app that drachtio-server connects to (outbound)')
  .option('--secret <secret>', "drachtio-server's shared secret")
  .option('--state <file>', 'SQLite state file (blocks, bans, audit), instead of guard.yaml store.path')
  .action(async (o: { rules: string; listen?: string[]; upstream?: string; drachtio?: string; drachtioListen?: string; secret?: string; state?: string }) => {
    const logger = createLogger('info');
    try {
      const drachtio = { connect: o.drachtio, listen: o.drachtioListen, secret: o.secret };
      const guard = await startGuard({ rulesDir: o.rules, listen: o.listen, upstream: o.upstream, logger, drachtio, stateFile: o.state });
      const shutdown = (signal: string): void => {
        logger.info({ message: 'shutting down', signal });
        guard.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ message: 'error while stopping', error: String(err) });
            process.exit(1);
          },
        );
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    } catch (err) {
      if (err instanceof RulesError) {
        process.stderr.write(`tollguard: the rules in ${o.rules} are not valid:\n${err.message}\n`);
      } else {
        process.stderr.write(`tollguard: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
      }
      process.exit(1);
    }
  });

program
  .command('check')
  .description('validate the rules in DIR without running them; exit 1 listing every error as file:line')
  .option('--rules <dir>', 'rules directory', 'rules')
  .action((o: { rules: string }) => {
    const result = checkRules(o.rules);
    if (result.ok) {
      process.stdout.write(result.summary + '\n');
      return;
    }
    for (const p of result.problems) process.stderr.write(`${p.at}: ${p.message}\n`);
    process.exitCode = 1;
  });

registerAccountCommands(program);
registerBanCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`tollguard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
