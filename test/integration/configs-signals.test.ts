// Ctrl-C (and SIGTERM, SIGHUP) on a process that prepared scratch configs leaves no
// mount and no loop device behind, at whatever point of the preparation it comes.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

const SETUP = path.join(__dirname, '..', '..', 'lib', 'configs', 'setup.js');
const MATRIX = path.join(__dirname, '..', '..', 'lib', 'cases', 'matrix.js');

// Prints "start", prepares ext4, xfs and tmpfs scratch configs, prints their mount
// points and devices as JSON, then waits to be signalled.
const CHILD = `
const { prepareScratch } = require(${JSON.stringify(SETUP)});
const { CONFIGS } = require(${JSON.stringify(MATRIX)});
const workDir = process.argv[1];
const keepAlive = setInterval(() => {}, 1000);
console.log('start');
(async () => {
  const prepared = [];
  for (const name of ['ext4', 'xfs', 'tmpfs']) {
    prepared.push(await prepareScratch(CONFIGS.find((c) => c.name === name), { workDir }));
  }
  console.log(JSON.stringify(prepared.map((p) => ({ mountPoint: p.mountPoint, device: p.device }))));
})().catch((e) => { console.error(e.message); clearInterval(keepAlive); process.exitCode = 3; });
`;

interface Child {
  lines: string[];
  nextLine(): Promise<string>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  kill(signal: NodeJS.Signals): void;
}

function startChild(workDir: string): Child {
  const child = spawn(process.execPath, ['-e', CHILD, workDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      waiters.shift()?.(line);
    }
  });
  let consumed = 0;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    lines,
    nextLine: () => (consumed < lines.length ? Promise.resolve(lines[consumed++]) : new Promise((resolve) => waiters.push((l) => (consumed++, resolve(l))))),
    exited,
    kill: (signal) => child.kill(signal),
  };
}

/** What of workDir is still mounted or attached to a loop device. */
function leftovers(workDir: string): string[] {
  const mounted = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(workDir));
  const attached = execFileSync('losetup', ['-a'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(workDir));
  return [...mounted, ...attached];
}

function workDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-signals-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  t.test(`${signal} after three configs are prepared: everything is undone, exit ${EXIT[signal]}`, async (t) => {
    const dir = workDir(t);
    const child = startChild(dir);
    t.equal(await child.nextLine(), 'start');
    const prepared = JSON.parse(await child.nextLine()) as { mountPoint: string; device: string | null }[];
    t.equal(prepared.length, 3);
    const mountsBefore = fs.readFileSync('/proc/mounts', 'utf8');
    const loopsBefore = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
    for (const p of prepared) {
      t.ok(mountsBefore.includes(` ${p.mountPoint} `), `${p.mountPoint} is mounted before the signal`);
      if (p.device) t.ok(loopsBefore.includes(`${p.device}:`), `${p.device} is attached before the signal`);
    }
    child.kill(signal);
    const { code } = await child.exited;
    t.equal(code, EXIT[signal]);
    t.same(leftovers(dir), [], 'no mount, no loop device left');
    t.same(fs.readdirSync(dir), [], 'loop files and mount points removed');
  });
}

for (const delayMs of [0, 40, 80, 120, 160, 240]) {
  t.test(`Ctrl-C ${delayMs} ms into preparing: nothing left behind`, async (t) => {
    const dir = workDir(t);
    const child = startChild(dir);
    t.equal(await child.nextLine(), 'start');
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGINT');
    const { code } = await child.exited;
    t.equal(code, 130, `exited 130 (stdout: ${child.lines.length} lines)`);
    t.same(leftovers(dir), [], 'no mount, no loop device left');
    t.same(fs.readdirSync(dir), [], 'loop files and mount points removed');
  });
}
