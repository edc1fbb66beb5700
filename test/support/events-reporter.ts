/**
 * A node:test reporter that writes one JSON line as each top-level test is registered, and as
 * each test starts running, passes or fails.
 * The runner (test/runner.ts) reads these lines while the file runs: they are how it knows which
 * test is running when one goes over its budget, and how it counts results across files.
 */
import type { TestEvent } from 'node:test/reporters';

export interface EventLine {
  /** `planned`: a top-level test or suite was registered (at load); the runner counts them to
   *  know when the file's last test is over. */
  type: 'planned' | 'start' | 'pass' | 'fail';
  name: string;
  nesting: number;
  line?: number | undefined;
  /** Set on pass/fail. */
  ms?: number;
  suite?: boolean;
  skip?: boolean;
  todo?: boolean;
  /** The failure's first line, on fail. */
  error?: string;
}

export default async function* eventsReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    // test:dequeue is when a test begins to run; test:start only when its report begins.
    if (event.type === 'test:enqueue' && event.data.nesting === 0) {
      yield line({ type: 'planned', name: event.data.name, nesting: 0 });
    } else if (event.type === 'test:dequeue') {
      const d = event.data;
      yield line({ type: 'start', name: d.name, nesting: d.nesting, line: d.line });
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      const d = event.data;
      const out: EventLine = {
        type: event.type === 'test:pass' ? 'pass' : 'fail',
        name: d.name,
        nesting: d.nesting,
        line: d.line,
        ms: Math.round(d.details.duration_ms),
        suite: d.details.type === 'suite' || undefined,
        skip: d.skip !== undefined && d.skip !== false ? true : undefined,
        todo: d.todo !== undefined && d.todo !== false ? true : undefined,
      };
      if (event.type === 'test:fail') out.error = firstLine(event.data.details.error);
      yield line(out);
    }
  }
}

function line(e: EventLine): string {
  return `${JSON.stringify(e)}\n`;
}

function firstLine(err: unknown): string {
  const e = err as { cause?: unknown; message?: unknown } | null;
  // node:test wraps a test's own error as the cause of its "test failed" error.
  const inner = (e?.cause ?? e) as { message?: unknown } | null;
  return String(inner?.message ?? err).split('\n')[0]?.slice(0, 300) ?? '';
}
