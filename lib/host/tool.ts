// Running a program (mkfs, fsck, apt-get, dpkg-deb, depmod, ...) to completion without
// blocking the event loop: one way for every caller.
import { ChildProcess, execFile } from 'node:child_process';
import path from 'node:path';
import { register, stopRequested } from './lifecycle';

export interface ToolResult {
  /** The exit status; -1 when the program could not be started or was killed. */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Why it did not run or finish when there is no exit status (not found, killed, output too large). */
  failure: string | null;
}

export interface ToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  maxBuffer?: number;
}

/** Kills a program still running and waits (a little) for it to go: it may hold a device open. */
function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGKILL');
  });
}

/**
 * Runs a program; never rejects: what happened is in the result. On a fatal signal a
 * program still running (mkfs holding a loop device open, say) is killed before the
 * teardown undoes anything; programs the teardown itself runs are left to finish.
 */
export function runTool(file: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    let unregister = () => undefined as void;
    const child = execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env, maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        unregister();
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        const exitCode = e ? (typeof e.code === 'number' ? e.code : -1) : 0;
        const failure = e === null || typeof e.code === 'number' ? null : e.code === 'ENOENT' ? `${file}: not found` : e.message;
        resolve({ exitCode, stdout, stderr, failure });
      },
    );
    if (stopRequested() === null) unregister = register(`${path.basename(file)} (pid ${child.pid})`, () => killAndWait(child), { early: true });
  });
}

/**
 * Runs a program that must succeed. On failure the error names the program and carries
 * the last line it printed on stderr, which is where apt, dpkg-deb and depmod put the reason.
 */
export async function runToolOk(file: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  const r = await runTool(file, args, options);
  if (r.exitCode === 0) return r;
  if (r.failure?.endsWith(': not found')) throw new Error(r.failure);
  const lastLine = r.stderr.trim().split('\n').filter(Boolean).pop() ?? r.failure ?? `exit status ${r.exitCode}`;
  throw new Error(`${path.basename(file)}: ${lastLine}`.replace(/\s+/g, ' '));
}
