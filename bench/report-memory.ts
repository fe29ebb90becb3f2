// Peak RSS of `daxpin report` and `daxpin compare` over a large generated run file:
// a run resumed again and again repeats its case records (the last one counts), so the
// file grows without bound while the distinct cases stay at the matrix's size. Memory
// must follow the distinct cases, not the file (issue 13: 1 GB in ≤ 500 MB).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONFIGS, casesFor } from '../lib/cases/matrix';
import { CaseRecord, RunRecord, SCHEMA_VERSION, planKey, unmeasuredCase } from '../lib/outcome';
import { BenchResult, round } from './common';

const CLI = path.join(__dirname, '..', 'lib', 'cli.js');
const RUN_ID = 'bench-report-memory';

/** A run file of about `bytes`: the default matrix of every config, its records repeated until the size is reached. */
function generate(file: string, bytes: number): { lines: number; distinct: number } {
  const cases = CONFIGS.flatMap((config) => casesFor(config, 'default'));
  const run: RunRecord = {
    record: 'run',
    schema: SCHEMA_VERSION,
    runId: RUN_ID,
    kernel: '7.3.4+deb13-amd64',
    host: 'bench',
    startedAt: new Date().toISOString(),
    argv: ['run'],
    holdMs: 200,
    settleMs: 2000,
    planned: cases.map((c) => planKey(c.config.name, c.id)),
    runner: 'native',
  };
  const records = cases.map((c): string => {
    const rec: CaseRecord = {
      ...unmeasuredCase({
        runId: RUN_ID,
        caseId: c.id,
        kernel: run.kernel,
        host: run.host,
        config: c.config.name,
        fsType: c.config.fsType,
        mapping: c.mapping.name,
        pinMethod: c.pinMethod.name,
        layoutOp: c.layoutOp.name,
        holdMs: 200,
        settleMs: 2000,
        status: 'done',
        startedAt: run.startedAt,
        durationMs: 12,
      }),
      kernelLog: [{ level: 4, signature: 'WARNING: CPU: PID: at fs/dax.c:NNN dax_disassociate_entry+0x/0x', text: `[ 12.345678] WARNING: CPU: 1 PID: 4242 at fs/dax.c:381 dax_disassociate_entry+0x5d/0x70 ${'x'.repeat(200)}` }],
    };
    return `${JSON.stringify(rec)}\n`;
  });
  const fd = fs.openSync(file, 'w');
  let size = fs.writeSync(fd, `${JSON.stringify(run)}\n`);
  let lines = 1;
  const block = records.join('');
  while (size < bytes) {
    size += fs.writeSync(fd, block);
    lines += records.length;
  }
  fs.closeSync(fd);
  return { lines, distinct: records.length };
}

/** Runs the CLI; peak RSS from VmHWM in /proc/<pid>/status, sampled until exit. */
function measure(args: string[]): Promise<{ code: number | null; hwmMiB: number; wallS: number; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    let hwmKiB = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwmKiB = Math.max(hwmKiB, Number(m[1]));
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 50);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, hwmMiB: round(hwmKiB / 1024, 1) ?? 0, wallS: round((performance.now() - t0) / 1000, 1) ?? 0, stderr });
    });
  });
}

export async function reportMemory(sizeMb = Number(process.env.DAXPIN_BENCH_REPORT_MB ?? 1024)): Promise<BenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-bench-report-'));
  try {
    const big = path.join(dir, 'big.jsonl');
    const { lines, distinct } = generate(big, sizeMb * 1024 * 1024);
    const small = path.join(dir, 'small.jsonl');
    generate(small, 1);
    const fileMiB = round(fs.statSync(big).size / 1024 / 1024, 0);
    const rows = [];
    for (const [what, args] of [
      ['report md', ['report', big, '--format', 'md', '--out', path.join(dir, 'r.md')]],
      ['report html', ['report', big, '--format', 'html', '--out', path.join(dir, 'r.html')]],
      ['compare', ['compare', small, big, '--out', path.join(dir, 'c.md')]],
    ] as const) {
      const m = await measure([...args]);
      rows.push({ what, fileMiB, lines, distinct, exit: m.code, peakRssMiB: m.hwmMiB, wallS: m.wallS, error: m.code === 0 || m.code === 1 ? null : m.stderr.trim().split('\n').pop() ?? null });
    }
    const worst = Math.max(...rows.map((r) => r.peakRssMiB));
    return {
      bench: 'report-memory',
      summary: { fileMiB, distinctCases: distinct, peakRssMiB: worst },
      rows,
      targets: [{ what: 'peak RSS of report/compare over a 1 GiB run file', target: '≤ 500 MB', measured: `${worst} MiB (${fileMiB} MiB file)`, met: sizeMb >= 1024 ? worst <= 500 / 1.048576 : null }],
      notes: ['a generated run: the default matrix of all 6 configs (2184 distinct cases), records repeated until the size; VmHWM sampled every 50 ms'],
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
