// What every benchmark shares: the machine description, statistics, and the two
// outputs (a table for people, one JSON line per benchmark for machines).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Machine {
  date: string;
  kernel: string;
  node: string;
  cpus: number;
  memGiB: number;
  os: string;
}

export function machine(): Machine {
  const osRelease = fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '';
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? os.type();
  const debian = fs.existsSync('/etc/debian_version') ? ` (${fs.readFileSync('/etc/debian_version', 'utf8').trim()})` : '';
  return {
    date: new Date().toISOString(),
    kernel: os.release(),
    node: process.version,
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${pretty}${debian}`,
  };
}

/** One benchmark's result: the rows it printed and its headline numbers. */
export interface BenchResult {
  bench: string;
  /** Headline numbers with units in their names (`ratio`, `wallS`, `hwmMiB`). */
  summary: Record<string, number | string | boolean | null>;
  rows: Array<Record<string, number | string | boolean | null>>;
  /** Targets from issue 6 and whether they were met; absent when not measured. */
  targets?: Array<{ what: string; target: string; measured: string; met: boolean | null }>;
  notes?: string[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

export const round = (x: number, digits = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : null);

/** A plain-text table: columns sized to their widest cell, numbers right-aligned. */
export function table(rows: Array<Record<string, unknown>>, columns?: string[]): string {
  if (rows.length === 0) return '(no rows)';
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'number' ? String(v) : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === 'number' || r[c] === null || r[c] === undefined));
  const line = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(width[i]) : v.padEnd(width[i]))).join('  ').trimEnd();
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export function print(r: BenchResult, columns?: string[]): void {
  const out = process.stdout;
  out.write(`\n== ${r.bench}\n`);
  out.write(`${table(r.rows, columns)}\n`);
  for (const [k, v] of Object.entries(r.summary)) out.write(`  ${k}: ${v}\n`);
  for (const t of r.targets ?? []) out.write(`  target ${t.what} ${t.target}: ${t.measured} ${t.met === null ? '(not measured)' : t.met ? 'MET' : 'MISSED'}\n`);
  for (const n of r.notes ?? []) out.write(`  note: ${n}\n`);
  out.write(`BENCH ${JSON.stringify({ ...r, machine: machine() })}\n`);
}

/** Runs a command `n` times and returns the wall times in ms. */
export function timeCommand(argv: string[], n: number, cwd?: string): number[] {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync(argv[0], argv.slice(1), { cwd, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status ?? r.signal}`);
    times.push(performance.now() - t0);
  }
  return times;
}

/** The package root (dist/bench/x.js → ../..). */
export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (it mounts filesystems and pins pages, as daxpin run does)`);
}

/** Peak and current RSS of a process from /proc/<pid>/status, in KiB; null once it is gone. */
export function memoryOf(pid: number): { hwmKiB: number; rssKiB: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS') };
  } catch {
    return null;
  }
}

/** Direct children of a process (from /proc/<pid>/task/<pid>/children). */
export function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function cmdlineOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
