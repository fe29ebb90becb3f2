// Running the daxpin CLI as a child process, with its temp dir (TMPDIR) private to
// the test, so that everything a run makes on the machine can be found afterwards.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** dist/test/helpers -> dist/lib/cli.js */
export const CLI = path.join(__dirname, '..', '..', 'lib', 'cli.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliChild {
  child: ChildProcess;
  pid: number;
  result: Promise<CliResult>;
  /** stderr so far. */
  stderr(): string;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const result = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, pid: child.pid!, result, stderr: () => stderr };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).result;
}

/** A fresh directory for one test, removed at its end (after whatever else the test tears down). */
export function testDir(t: { teardown(fn: () => void | Promise<void>): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `pred` returns a truthy value; throws after timeoutMs. */
export async function waitFor<T>(what: string, pred: () => T | null | undefined | false, timeoutMs = 30_000, everyMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Complete JSONL lines of a file written so far (a torn last line is left out). */
export function jsonlLines(file: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a torn line
  return lines.filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The first line of the file `inflight` (the case key the VM-runner marker names), or null. */
export function inflightKey(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[0] || null;
  } catch {
    return null;
  }
}

/** The two cases of a held-pin run: a control, then an O_DIRECT read the peer never answers. */
export const HELD_PIN_CASES = ['none.punch-hole.pte-shared', 'odirect-read.punch-hole.pte-shared'];

export interface HeldPinRun {
  cli: CliChild;
  tmp: string;
  out: string;
  inflight: string;
}

/**
 * `daxpin run --scratch` on ext4 then tmpfs, with TMPDIR private to the test, whose
 * second case holds an O_DIRECT pin: with a FUSE peer that answers nothing (test
 * hook) the pin stays held for the 3 s the release waits, which is when the signal
 * tests land "mid-case". `prefix` names the test's temp dir.
 */
export function startHeldPinRun(prefix: string): HeldPinRun {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const out = path.join(tmp, 'run.jsonl');
  const inflight = path.join(tmp, 'inflight');
  const cli = startCli(
    ['run', '--scratch', '--config', 'ext4,tmpfs', '--cases', HELD_PIN_CASES.join(','), '--hold-ms', '2000', '--settle-ms', '3000', '--out', out, '--inflight', inflight],
    { TMPDIR: tmp, DAXPIN_TEST_PEER_NO_REPLY: '1' },
  );
  return { cli, tmp, out, inflight };
}

/** Resolves once the held-pin case is running in its worker, 600 ms into its 3 s release wait. */
export async function heldPinReached(run: HeldPinRun, workerOf: (pid: number) => unknown): Promise<void> {
  await waitFor('the pinned case', () => inflightKey(run.inflight) === `ext4/${HELD_PIN_CASES[1]}`);
  await waitFor('its worker', () => workerOf(run.cli.pid));
  await sleep(600);
}
