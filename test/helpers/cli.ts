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
