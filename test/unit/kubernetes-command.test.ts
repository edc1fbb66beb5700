/**
 * The exec argv, run for real with the local /bin/sh (dash here; busybox and bash behave the
 * same for this POSIX subset): what arrives in the process is what the user sent.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { ProcessSpec } from '../../src/backends/backend.ts';
import { SESSION_TAG_VAR, buildExecCommand } from '../../src/backends/exec/command.ts';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(spec: ProcessSpec, opts: { input?: string; env?: NodeJS.ProcessEnv; sessionTag?: string } = {}): Run {
  const { argv } = buildExecCommand(spec, opts.sessionTag === undefined ? {} : { sessionTag: opts.sessionTag });
  const [file, ...args] = argv;
  assert.equal(file, '/bin/sh');
  const started = Date.now();
  const res = spawnSync(file, args, {
    input: opts.input ?? '',
    env: opts.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr, ms: Date.now() - started };
}

const noTty = (command: string | null, env: Record<string, string> = {}): ProcessSpec => ({ command, tty: null, env });

describe('exec command builder', () => {
  it('runs the command through /bin/sh -c without splitting it on spaces', () => {
    const r = run(noTty(`printf '%s|' a "b  c" 'd e'`));
    assert.equal(r.stdout, 'a|b  c|d e|');
    assert.equal(r.status, 0);
  });

  it('passes exit codes through: 0, 1, 3, 127 for a missing command', () => {
    assert.equal(run(noTty('true')).status, 0);
    assert.equal(run(noTty('false')).status, 1);
    assert.equal(run(noTty('exit 3')).status, 3);
    const missing = run(noTty('no-such-command-podbridge'));
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /not found/);
  });

  it('keeps stdout and stderr apart and passes stdin through', () => {
    const r = run(noTty('cat; echo err >&2'), { input: 'hello\n' });
    assert.equal(r.stdout, 'hello\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('keeps no state in variables a client can set: names the wrapper once used change nothing (issue 15)', () => {
    // The old counter `n`: exporting n=1 first ended the export loop early and ran the next
    // KEY=VALUE argument as the command, bypassing a forced command.
    const env = { n: '1', LC_X: 'x; echo BYPASSED', i: '19' };
    const r = run(noTty('echo ran; printf "%s|" "$n" "$LC_X" "$i"', env));
    assert.equal(r.stdout, 'ran\n1|x; echo BYPASSED|19|');
    assert.equal(r.status, 0);
    // The same with a terminal size to wait for (the wait loop once counted in `i`).
    const t = run({ command: 'echo ran; printf "%s|" "$i" "$n"', tty: { term: 'xterm', cols: 80, rows: 24 }, env });
    assert.equal(t.stdout, 'ran\n19|1|');
  });

  it('execs a simple command (no shell left above it), and leaves builtins and shell syntax to the shell', () => {
    // Exec'd all the way down, the program's parent is whoever started the wrapper (this test):
    // no shell stays in between to catch the terminal's SIGINT.
    assert.equal(run(noTty(`sh -c 'echo "$PPID"'`)).stdout, `${process.pid}\n`);
    assert.notEqual(run(noTty(`sh -c 'echo "$PPID"'; true`)).stdout, `${process.pid}\n`, 'a list stays under its shell');
    const { argv } = buildExecCommand(noTty(`python3 -c 'print(1)'`));
    assert.equal(argv.at(-1), `exec python3 -c 'print(1)'`);
    for (const cmd of ['exit 3', 'cd /tmp', 'echo hi', 'a | b', 'x=1 y', 'cmd; other', 'echo $HOME', '-l x', "'exit' 4"]) assert.equal(buildExecCommand(noTty(cmd)).argv.at(-1), cmd);
  });

  it('exports env values byte for byte: spaces, quotes, $, backticks, newlines, =', () => {
    const tricky = {
      SPACES: '  two  spaces  ',
      QUOTES: `it's "quoted"`,
      DOLLAR: '$HOME ${PATH} $(echo pwned) `echo pwned`',
      NEWLINE: 'line1\nline2',
      EQUALS: 'a=b=c',
      BACKSLASH: 'back\\slash\\n',
      EMPTY: '',
      LC_ALL: 'C.UTF-8',
    };
    const r = run(noTty(`for v in SPACES QUOTES DOLLAR NEWLINE EQUALS BACKSLASH EMPTY LC_ALL; do eval "printf '%s\\0' \\"\\$$v\\""; done`, tricky));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\0').slice(0, -1), Object.values(tricky));
  });

  it('exports them to child processes, not only to the shell', () => {
    const r = run(noTty('env', { GREETING: 'hi there' }));
    assert.match(r.stdout, /^GREETING=hi there$/m);
  });

  it('sets TERM from the pty request and lets it win over an env TERM', () => {
    const spec: ProcessSpec = { command: 'printf %s "$TERM"', tty: { term: 'xterm-256color', cols: 0, rows: 0 }, env: { TERM: 'dumb' } };
    assert.equal(run(spec).stdout, 'xterm-256color');
  });

  it('leaves TERM alone without a pty unless the client sent one in env', () => {
    assert.equal(run(noTty('printf %s "${TERM-unset}"')).stdout, 'unset');
    assert.equal(run(noTty('printf %s "$TERM"', { TERM: 'vt100' })).stdout, 'vt100');
  });

  it('leaks no wrapper arguments or variables into the command', () => {
    const r = run(noTty('printf "%s %s %s" "$#" "${n-unset}" "${i-unset}"', { A: '1', B: '2' }));
    assert.equal(r.stdout, '0 unset unset');
  });

  it('drops invalid environment names and NUL values, and says which', () => {
    const { argv, droppedEnv } = buildExecCommand(noTty('true', { 'BAD-NAME': 'x', '1X': 'y', 'A B': 'z', OK_1: 'fine', NUL: 'a\0b' }));
    assert.deepEqual(droppedEnv.sort(), ['1X', 'A B', 'BAD-NAME', 'NUL']);
    assert.ok(argv.includes('OK_1=fine'));
    assert.ok(!argv.some((a) => a.includes('BAD-NAME')));
  });

  it('marks the session with PODBRIDGE_SESSION when given a tag', () => {
    const r = run(noTty(`printf %s "$${SESSION_TAG_VAR}"`), { sessionTag: 'abc123' });
    assert.equal(r.stdout, 'abc123');
  });

  it('starts bash -l for a shell where bash exists', () => {
    const r = run(noTty(null), { input: 'printf "%s" "$0"; shopt -q login_shell && printf " login"; exit 5\n' });
    assert.equal(r.stdout, 'bash login');
    assert.equal(r.status, 5);
  });

  it('falls back to sh -l where bash is not on PATH', () => {
    const r = run(noTty(null), { input: 'printf "%s" "$0"; exit 6\n', env: { PATH: '/nonexistent' } });
    assert.equal(r.stdout, '/bin/sh');
    assert.equal(r.status, 6);
  });

  it('waits for a terminal size at most about a second, and not at all for a 0x0 pty', () => {
    // Not a terminal here, so `stty size` never reports one: the wait must give up on its own.
    const sized = run({ command: 'true', tty: { term: 'xterm', cols: 80, rows: 24 }, env: {} });
    assert.equal(sized.status, 0);
    assert.ok(sized.ms >= 800 && sized.ms < 3000, `waited ${sized.ms} ms`);
    const unsized = run({ command: 'true', tty: { term: 'xterm', cols: 0, rows: 0 }, env: {} });
    assert.ok(unsized.ms < 500, `waited ${unsized.ms} ms`);
    assert.ok(!buildExecCommand(noTty('true')).argv[2]?.includes('stty'));
  });

  it('goes on at once when the terminal already has a size', () => {
    // `script` gives the wrapper a real pty; we set its size before the wrapper looks.
    const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) return;
    const { argv } = buildExecCommand({ command: 'stty size', tty: { term: 'xterm', cols: 100, rows: 30 }, env: {} });
    const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const started = Date.now();
    const res = spawnSync('script', ['-qec', `stty rows 30 cols 100; ${quoted}`, '/dev/null'], { encoding: 'utf8', timeout: 10_000 });
    assert.match(res.stdout, /30 100/);
    assert.ok(Date.now() - started < 800, `took ${Date.now() - started} ms`);
  });
});
