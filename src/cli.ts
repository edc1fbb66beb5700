#!/usr/bin/env node
/** Command line: parse, build the config, start things. No logic lives here. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startBridge } from './bridge.ts';
import { buildConfig, DEFAULT_HOST_KEY, defaultAuthorizedKeys } from './config.ts';
import { createLogger, type Logger, type LogLevel } from './log.ts';
import { loadOrCreateHostKey } from './ssh/keys.ts';

/** Start-up failures go to the log and, for the person at the terminal, as one line on stderr. */
function fatal(log: Logger, message: string, code: number): never {
  log.fatal(message);
  process.stderr.write(`podbridge: ${message}\n`);
  process.exit(code);
}

await yargs(hideBin(process.argv))
  .scriptName('podbridge')
  .usage('$0 <command> [options]\n\nSSH into Kubernetes pods with any SSH client: ssh -p 2222 NAMESPACE.POD@bridge')
  .env('PODBRIDGE')
  .command(
    'serve',
    'Start the SSH bridge',
    (y) =>
      y
        .option('listen', { type: 'string', describe: 'Address to listen on: HOST:PORT, [IPv6]:PORT or PORT', defaultDescription: '127.0.0.1:2222' })
        .option('host-key', { type: 'string', array: true, describe: 'Host private key file; generated (ed25519) if missing', defaultDescription: DEFAULT_HOST_KEY })
        .option('authorized-keys', { type: 'string', describe: 'OpenSSH authorized_keys file of the keys allowed in', defaultDescription: defaultAuthorizedKeys() })
        .option('backend', { choices: ['auto', 'kubernetes', 'local'] as const, default: 'auto', describe: 'Where sessions run; auto = kubernetes if a kubeconfig or in-cluster config exists, else local shells' })
        .option('kubeconfig', { type: 'string', describe: 'kubeconfig file', defaultDescription: '$KUBECONFIG, ~/.kube/config, in-cluster' })
        .option('context', { type: 'string', describe: 'kubeconfig context', defaultDescription: 'current-context' })
        .option('namespace', { type: 'string', describe: 'Namespace for login names without one', defaultDescription: "the context's, else default" })
        .option('accept-env', { type: 'string', array: true, describe: 'Environment variables clients may set (sshd AcceptEnv; * wildcards)', defaultDescription: 'LANG LC_* LANGUAGE TZ' })
        .option('keepalive-interval', { type: 'number', describe: 'Seconds between SSH keepalives (0 = off)', default: 15 })
        .option('login-grace-time', { type: 'number', describe: 'Seconds a connection has to authenticate', default: 30 })
        .option('log-level', { choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, default: 'info' as const })
        .example('$0 serve', 'serve the current kubeconfig context (or local shells) on 127.0.0.1:2222')
        .example('$0 serve --listen 0.0.0.0:2222 --kubeconfig ~/.kube/prod', 'serve a cluster on every interface'),
    async (argv) => {
      const log = createLogger(argv.logLevel as LogLevel);
      let config;
      try {
        config = buildConfig({
          listen: argv.listen,
          hostKey: argv.hostKey,
          authorizedKeys: argv.authorizedKeys,
          backend: argv.backend,
          kubeconfig: argv.kubeconfig,
          context: argv.context,
          namespace: argv.namespace,
          acceptEnv: argv.acceptEnv,
          keepaliveInterval: argv.keepaliveInterval,
          loginGraceTime: argv.loginGraceTime,
          logLevel: argv.logLevel,
        });
      } catch (err) {
        fatal(log, (err as Error).message, 2);
      }
      const bridge = await startBridge(config, log).catch((err: Error) => fatal(log, err.message, 1));
      const stop = (signal: string) => {
        log.info({ signal }, 'shutting down');
        void bridge.close().then(() => process.exit(0));
        setTimeout(() => process.exit(0), 10_000).unref();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
  )
  .command(
    'keygen [file]',
    'Generate an ed25519 host key (if the file does not exist) and print its fingerprint',
    (y) => y.positional('file', { type: 'string', default: DEFAULT_HOST_KEY }),
    (argv) => {
      const key = loadOrCreateHostKey(argv.file);
      process.stdout.write(`${key.generated ? 'generated' : 'exists'}: ${key.file} ${key.type} ${key.fingerprint}\n`);
    },
  )
  .demandCommand(1, 'Say what to do: podbridge serve (start the bridge) or podbridge keygen')
  .strict()
  .help()
  .parseAsync();
