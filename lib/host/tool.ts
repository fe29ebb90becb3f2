// Running a program (mkfs, fsck, apt-get, dpkg-deb, depmod, ...) to completion without
// blocking the event loop: one way for every caller.
import { execFile } from 'node:child_process';
import path from 'node:path';

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

/** Runs a program; never rejects: what happened is in the result. */
export function runTool(file: string, args: string[], options: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: options.cwd, env: options.env, maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        const exitCode = e ? (typeof e.code === 'number' ? e.code : -1) : 0;
        const failure = e === null || typeof e.code === 'number' ? null : e.code === 'ENOENT' ? `${file}: not found` : e.message;
        resolve({ exitCode, stdout, stderr, failure });
      },
    );
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
