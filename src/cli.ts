#!/usr/bin/env node
/** Command line: parse, build the config, start things. No logic lives here. */
import fs from 'node:fs';
import YAML from 'yaml';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { startBridge } from './bridge.ts';
import { buildConfig, DEFAULT_HOST_KEY, defaultAuthorizedKeys } from './config.ts';
import { createLogger, type Logger, type LogLevel } from './log.ts';
import { loadOrCreateHostKey, MIN_RSA_BITS } from './ssh/keys.ts';

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
        .config('config', 'YAML or JSON file with any of these options (flags win)', (file: string) => YAML.parse(fs.readFileSync(file, 'utf8')) as object)
        .option('listen', { type: 'string', describe: 'Address to listen on: HOST:PORT, [IPv6]:PORT or PORT', defaultDescription: '127.0.0.1:2222' })
        .option('host-key', { type: 'string', array: true, describe: 'Host private key file or directory of keys (a Secret mount); a missing file is generated (ed25519)', defaultDescription: DEFAULT_HOST_KEY })
        .option('authorized-keys', { type: 'string', describe: 'OpenSSH authorized_keys file of the keys allowed in', defaultDescription: defaultAuthorizedKeys() })
        .option('policy', { type: 'string', describe: 'Access policy file (YAML): identities, certificate authorities, rules, impersonation; see docs/policy.md' })
        .option('backend', { choices: ['auto', 'kubernetes', 'local'] as const, default: 'auto', describe: 'Where sessions run; auto = kubernetes if a kubeconfig or in-cluster config exists, else local shells' })
        .option('kubeconfig', { type: 'string', describe: 'kubeconfig file', defaultDescription: '$KUBECONFIG, ~/.kube/config, in-cluster' })
        .option('context', { type: 'string', describe: 'kubeconfig context', defaultDescription: 'current-context' })
        .option('namespace', { type: 'string', describe: 'Namespace for login names without one', defaultDescription: "the context's, else default" })
        .option('accept-env', { type: 'string', array: true, describe: 'Environment variables clients may set (sshd AcceptEnv; * wildcards)', defaultDescription: 'LANG LC_* LANGUAGE TZ' })
        .option('idle-timeout', { type: 'number', describe: 'Seconds without traffic before a session is ended (0 = off)', default: 0 })
        .option('max-session-time', { type: 'number', describe: 'Seconds after which any session is ended (0 = off)', default: 12 * 3600 })
        .option('session-warning', { type: 'number', describe: 'Seconds before an idle or duration cut that the user is warned', default: 60 })
        .option('terminate-grace', { type: 'number', describe: "Seconds between HUP and KILL for an ended session's processes", default: 2 })
        .option('shutdown-grace', { type: 'number', describe: 'Seconds sessions may go on after SIGTERM', default: 30 })
        .option('keepalive-interval', { type: 'number', describe: 'Seconds between SSH keepalives (0 = off)', default: 15 })
        .option('login-grace-time', { type: 'number', describe: 'Seconds a connection has to authenticate', default: 30 })
        .option('max-auth-tries', { type: 'number', describe: 'Failed authentication requests per connection', default: 6 })
        .option('max-startups', { type: 'number', describe: 'Concurrent unauthenticated connections', default: 100 })
        .option('max-sessions', { type: 'number', describe: 'Sessions per connection', default: 10 })
        .option('max-sessions-per-identity', { type: 'number', describe: 'Concurrent sessions of one identity', default: 64 })
        .option('max-connection-rate', { type: 'number', describe: 'New connections per second one address may open that do not authenticate (DHEat; 0 = off)', default: 5 })
        .option('connection-burst', { type: 'number', describe: 'Connections one address may open at once before --max-connection-rate applies', default: 16 })
        .option('backoff-threshold', { type: 'number', describe: 'Failed logins per minute from one address before it must wait (5 s, doubling)', default: 10 })
        .option('kex', { type: 'string', array: true, describe: 'Key exchange algorithms', defaultDescription: 'mlkem768x25519 (post-quantum), curve25519, DH group 16/18' })
        .option('ciphers', { type: 'string', array: true, describe: 'Ciphers', defaultDescription: 'chacha20-poly1305, AES-GCM, AES-CTR' })
        .option('macs', { type: 'string', array: true, describe: 'MACs', defaultDescription: 'hmac-sha2-256/512-etm' })
        .option('host-key-algorithms', { type: 'string', array: true, describe: 'Host key signature algorithms', defaultDescription: 'ssh-ed25519 rsa-sha2-512 rsa-sha2-256' })
        .option('banner', { type: 'string', describe: 'File shown to clients before authentication' })
        .option('motd', { type: 'string', describe: 'File shown at the start of interactive shells' })
        .option('audit-log', { type: 'string', describe: 'Audit events as JSON lines: a file, or - for stdout' })
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
          policy: argv.policy,
          backend: argv.backend,
          kubeconfig: argv.kubeconfig,
          context: argv.context,
          namespace: argv.namespace,
          acceptEnv: argv.acceptEnv,
          idleTimeout: argv.idleTimeout,
          maxSessionTime: argv.maxSessionTime,
          sessionWarning: argv.sessionWarning,
          terminateGrace: argv.terminateGrace,
          shutdownGrace: argv.shutdownGrace,
          keepaliveInterval: argv.keepaliveInterval,
          loginGraceTime: argv.loginGraceTime,
          maxAuthTries: argv.maxAuthTries,
          maxStartups: argv.maxStartups,
          maxSessions: argv.maxSessions,
          maxSessionsPerIdentity: argv.maxSessionsPerIdentity,
          backoffThreshold: argv.backoffThreshold,
          maxConnectionRate: argv.maxConnectionRate,
          connectionBurst: argv.connectionBurst,
          kex: argv.kex,
          ciphers: argv.ciphers,
          macs: argv.macs,
          hostKeyAlgorithms: argv.hostKeyAlgorithms,
          banner: argv.banner,
          motd: argv.motd,
          auditLog: argv.auditLog,
          logLevel: argv.logLevel,
        });
      } catch (err) {
        fatal(log, (err as Error).message, 2);
      }
      // Handlers first: a SIGTERM that arrives while the bridge starts must still shut it down cleanly.
      const starting = startBridge(config, log).catch((err: Error) => fatal(log, err.message, 1));
      let stopping = false;
      const stop = (signal: string, graceMs: number) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'shutting down');
        void starting.then((bridge) => bridge.shutdown(graceMs)).then(() => process.exit(0));
        // A hung teardown must not keep the process alive forever.
        setTimeout(() => process.exit(0), graceMs + 15_000).unref();
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
        .positional('file', { type: 'string', default: DEFAULT_HOST_KEY })
        .option('type', { choices: ['ed25519', 'rsa'] as const, default: 'ed25519' as const })
        .option('bits', { type: 'number', default: MIN_RSA_BITS, describe: `RSA key size (at least ${MIN_RSA_BITS})` }),
    (argv) => {
      const key = loadOrCreateHostKey(argv.file, argv.type, argv.bits);
      process.stdout.write(`${key.generated ? 'generated' : 'exists'}: ${key.file} ${key.type} ${key.fingerprint}\n`);
    },
  )
  .demandCommand(1, 'Say what to do: podbridge serve (start the bridge) or podbridge keygen')
  .strict()
  .help()
  .parseAsync();
