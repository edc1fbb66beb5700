#!/usr/bin/env node
/** Command line: parse, build the config, start things. No logic lives here; the options come
 *  from the settings table (src/settings.ts). */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startBridge, stopBoundMs } from './bridge.ts';
import { loadConfig, type Config } from './config.ts';
import { createLogger, type Logger, type LogLevel } from './log.ts';
import { DEFAULT_HOST_KEY, flagHint, SettingError, yargsOptions } from './settings.ts';
import { keygenProblem, loadOrCreateHostKey, MAX_RSA_BITS, MIN_RSA_BITS, type HostKeyType } from './ssh/keys.ts';

/** Start-up failures go to the log and, for the person at the terminal, as one line on stderr. */
function fatal(log: Logger, message: string, code: number): never {
  log.fatal(message);
  process.stderr.write(`podbridge: ${message}\n`);
  process.exit(code);
}

/** A mistake on the command line: one line, no stack, no log (there is no bridge yet). */
function usageError(message: string): never {
  process.stderr.write(`podbridge: ${message}\n`);
  process.exit(2);
}

const cli = yargs(hideBin(process.argv));
// Every setting parses its own text (so an error can quote it): the help shows no types.
// (yargs 18 has usageConfiguration; @types/yargs 17 does not declare it yet.)
(cli as unknown as { usageConfiguration(c: Record<string, boolean>): unknown }).usageConfiguration({ 'hide-types': true });

await cli
  .scriptName('podbridge')
  .usage('$0 [serve] [options]       start the bridge\n$0 keygen [FILE] [options] make a host key\n\nSSH into Kubernetes pods with any SSH client: ssh -p 2222 NAMESPACE.POD@bridge')
  .command(
    ['serve', '$0'],
    'Start the SSH bridge (the default command)',
    (y) =>
      y
        .option('config', { type: 'string', describe: 'YAML or JSON file of settings (keys as the flags: idle-timeout: 60); flags and PODBRIDGE_* win over it', requiresArg: true, group: 'Where and who:' })
        .options(yargsOptions())
        .epilogue('Each option can also be set as PODBRIDGE_<OPTION> (PODBRIDGE_IDLE_TIMEOUT=60) or in the --config file. Details: docs/configuration.md')
        .example('$0 serve', 'serve the current kubeconfig context (or local shells) on 127.0.0.1:2222')
        .example('$0 serve --listen 0.0.0.0:2222 --kubeconfig ~/.kube/prod', 'serve a cluster on every interface'),
    async (argv) => {
      let config: Config;
      try {
        config = loadConfig({ flags: argv, env: process.env, configFile: typeof argv.config === 'string' ? argv.config : (process.env.PODBRIDGE_CONFIG ?? null) });
      } catch (err) {
        if (err instanceof SettingError) usageError(err.message);
        throw err;
      }
      const log = createLogger(config.logLevel as LogLevel);
      // Handlers first: a SIGTERM that arrives while the bridge starts must still shut it down cleanly.
      const starting = startBridge(config, log).catch((err: Error) => fatal(log, err.message, 1));
      let stopping = false;
      const stop = (signal: string, graceMs: number) => {
        if (stopping) return;
        stopping = true;
        const boundMs = stopBoundMs({ ...config, shutdownGraceMs: graceMs });
        log.info({ signal, graceSeconds: graceMs / 1000, exitWithinSeconds: boundMs / 1000 }, 'shutting down');
        void starting.then((bridge) => bridge.shutdown(graceMs)).then(() => process.exit(0));
        // The documented bound (docs/operations.md): a hung teardown must not outlive it.
        setTimeout(() => {
          log.warn({ seconds: boundMs / 1000 }, 'shutdown did not finish within its bound; exiting');
          process.exit(1);
        }, boundMs).unref();
      };
      process.on('SIGTERM', () => stop('SIGTERM', config.shutdownGraceMs));
      process.on('SIGINT', () => stop('SIGINT', 0));
      // Reload the policy without dropping sessions; the policy source logs what happened.
      process.on('SIGHUP', () => void starting.then((bridge) => bridge.reload('SIGHUP')));
      await starting;
    },
  )
  .command(
    'keygen [file]',
    'Generate a host key (if the file does not exist) and print its fingerprint',
    (y) =>
      y
        .positional('file', { type: 'string', default: DEFAULT_HOST_KEY, describe: `Where to write the private key; the public key goes beside it as FILE.pub [default: ${DEFAULT_HOST_KEY}]` })
        .option('type', { choices: ['ed25519', 'rsa'] as const, default: 'ed25519' as const, describe: 'Key type: ed25519 (recommended), or rsa for clients that cannot use ed25519 [default: ed25519]' })
        .option('bits', { type: 'string', requiresArg: true, describe: `RSA key size, ${MIN_RSA_BITS} to ${MAX_RSA_BITS} [default: ${MIN_RSA_BITS}]` }),
    (argv) => {
      const type = argv.type as HostKeyType;
      const bits = argv.bits === undefined ? MIN_RSA_BITS : Number(argv.bits);
      if (argv.bits !== undefined && type !== 'rsa') usageError('--bits applies to --type rsa only (ed25519 keys have one size)');
      if (argv.bits !== undefined && !/^\d+$/.test(argv.bits)) usageError(`--bits "${argv.bits}": expected a whole number of bits, ${MIN_RSA_BITS} to ${MAX_RSA_BITS}`);
      const problem = keygenProblem(type, bits);
      if (problem !== null) usageError(problem);
      try {
        const key = loadOrCreateHostKey(argv.file, type, bits);
        process.stdout.write(`${key.generated ? 'generated' : 'exists'}: ${key.file} ${key.type} ${key.fingerprint}\n`);
      } catch (err) {
        usageError((err as Error).message);
      }
    },
  )
  .strict()
  // yargs' own complaints (unknown option, missing value) as one line too, with the way to help.
  .fail((msg, err) => {
    if (err) throw err;
    const unknown = /^Unknown arguments?: (.*)$/.exec(msg.split('\n')[0] ?? '');
    if (unknown) {
      // yargs names each unknown flag twice (idle-timout, idleTimout): keep what the user typed.
      const typed = (unknown[1] ?? '').split(', ').filter((a) => !/[A-Z]/.test(a));
      usageError(`unknown option ${typed.map((t) => `--${t}${flagHint(t)}`).join(', ')}; podbridge --help lists the options`);
    }
    usageError(`${msg.split('\n')[0]} (podbridge --help lists the options)`);
  })
  .help()
  .parseAsync();
