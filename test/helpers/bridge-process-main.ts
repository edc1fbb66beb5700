/** Child side of bridge-process.ts: the real bridge with the CLI's signal handling, plus stats over IPC. */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startBridge } from '../../src/bridge.ts';
import { buildConfig, type ConfigInput } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';

const config = buildConfig(JSON.parse(process.argv[2] ?? '{}') as ConfigInput);
const log = createLogger(config.logLevel);
const bridge = await startBridge(config, log);
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

// The same handling as src/cli.ts, so SIGTERM/SIGHUP behave as in production.
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void bridge.shutdown(config.shutdownGraceMs).then(() => process.exit(0));
});
process.on('SIGHUP', () => bridge.reload('SIGHUP'));

process.on('message', (m: { id: number; stats?: boolean; reset?: boolean; gc?: boolean }) => {
  if (!m.stats) return;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (m.gc && gc) {
    gc();
    gc();
  }
  const mem = process.memoryUsage();
  process.send?.({
    id: m.id,
    stats: {
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      fds: fs.readdirSync('/proc/self/fd').length,
      loopDelayP99: delay.percentile(99) / 1e6,
      connections: bridge.server.connections(),
      sessions: bridge.server.sessions(),
    },
  });
  if (m.reset) delay.reset();
});
process.send?.({ ready: bridge.server.address.port });
