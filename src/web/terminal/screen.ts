/**
 * The server's copy of a browser terminal's screen: a headless xterm.js fed with every byte the
 * process printed, so a resumed or observing page starts from the screen as it is (serialized)
 * and not from a replay of everything since the start. Bounded: the visible rows plus
 * SCROLLBACK_ROWS lines of scrollback, whatever the process prints.
 */
import xtermHeadless from '@xterm/headless';
import xtermSerialize from '@xterm/addon-serialize';
import type { TerminalSize } from '../../backends/backend.ts';

// Both packages are CommonJS bundles: Node's ESM loader sees only their default export.
const { Terminal } = xtermHeadless;
const { SerializeAddon } = xtermSerialize;

/** Lines above the visible screen kept for a resumed page's scrollback. */
export const SCROLLBACK_ROWS = 1000;

export class Screen {
  private readonly term: InstanceType<typeof Terminal>;
  private readonly serializer: InstanceType<typeof SerializeAddon>;
  private disposed = false;

  constructor(size: TerminalSize) {
    this.term = new Terminal({ cols: size.cols, rows: size.rows, scrollback: SCROLLBACK_ROWS, allowProposedApi: true });
    this.serializer = new SerializeAddon();
    this.term.loadAddon(this.serializer as unknown as Parameters<typeof this.term.loadAddon>[0]);
  }

  /** Feeds output; `parsed` runs once the screen has taken it in (callbacks run in order). */
  write(chunk: Uint8Array, parsed: () => void): void {
    if (this.disposed) return parsed();
    this.term.write(chunk, parsed);
  }

  /** Runs `fn` once everything written so far is on the screen. */
  afterPending(fn: () => void): void {
    this.write(new Uint8Array(0), fn);
  }

  resize(size: TerminalSize): void {
    if (!this.disposed) this.term.resize(size.cols, size.rows);
  }

  /** Escape sequences that redraw this screen (with its scrollback, modes, colours, cursor). */
  serialize(): string {
    return this.disposed ? '' : this.serializer.serialize({ scrollback: SCROLLBACK_ROWS });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.term.dispose();
  }
}
