/** Reads the diagnostics port as Prometheus or a kubelet probe would: plain HTTP GETs. */
import http from 'node:http';

export interface HttpAnswer {
  status: number;
  type: string;
  body: string;
}

export function httpGet(port: number, path: string, host = '127.0.0.1'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 10 s`)));
    req.on('error', reject);
  });
}

/** `name{a="x",b="y"}` → value, from Prometheus text exposition. */
export type Samples = Map<string, number>;

export async function scrape(port: number, host = '127.0.0.1'): Promise<Samples> {
  const res = await httpGet(port, '/metrics', host);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  const samples: Samples = new Map();
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) samples.set(`${m[1]}${normalizeLabels(m[2] ?? '')}`, Number(m[3]));
  }
  return samples;
}

/** Labels sorted by name, so a test can name a series without knowing the exporter's order. */
function normalizeLabels(text: string): string {
  if (text === '') return '';
  const pairs = [...text.slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`);
  return `{${pairs.sort().join(',')}}`;
}

/** One series' value (0 when absent): `value(s, 'podbridge_sessions_total', { outcome: 'exit-zero', ... })`. */
export function value(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}${normalizeLabels(Object.keys(labels).length ? `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : '')}`;
  return samples.get(key) ?? 0;
}
