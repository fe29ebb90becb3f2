// `daxpin bisect --good V1 --bad V2 --cases GLOB`: binary search over every Debian
// kernel package between two versions (as `daxpin kernels` lists them), running only
// the matching cases in a guest per version. The search is bisect.ts; this boots,
// judges and keeps a state file after every step, so Ctrl-C and a rerun resume it.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { DaxpinError } from '../errors';
import { writeFileSynced } from '../host/durable';
import { planKey } from '../outcome';
import { readRun } from '../report/runfile';
import { downloadPackage } from '../vm/apt';
import { archiveKernels } from '../vm/kernels';
import type { ArchiveKernel } from '../vm/kernels';
import { vmCommand } from '../vm/runner';
import { outcomeClass } from '../verdict';
import { changesBetween, judgeStep, nextStep, parseDebianChangelog, signatureText } from './bisect';
import type { BisectState, ChangelogEntry, OutcomeSignature, StepVerdict } from './bisect';

const execFileAsync = promisify(execFile);

export interface BisectOptions {
  good: string;
  bad: string;
  cases: string[];
  config?: string[];
  repeat?: number;
  /** The state file (default ./daxpin-bisect.json); its directory holds each step's run. */
  state?: string;
  holdMs?: number;
  settleMs?: number;
  log?: (line: string) => void;
}

interface Params {
  good: string;
  bad: string;
  cases: string[];
  config: string[];
  repeat: number;
}

interface StateFile {
  params: Params;
  /** Candidate ids (Debian package versions), good end first. */
  versions: string[];
  /** Kernel release of each candidate, for messages. */
  releases: Record<string, string>;
  verdicts: Record<string, StepVerdict>;
  signatures: Record<string, OutcomeSignature | null>;
  runs: Record<string, string>;
}

/** The archive kernel a --good/--bad value names: a release, a package version or an upstream version. */
export function pickVersion(kernels: ArchiveKernel[], spec: string): number {
  const exact = kernels.map((k, i) => [k, i] as const).filter(([k]) => k.release === spec || k.version === spec || k.upstream === spec);
  if (exact.length === 0) throw new DaxpinError('EUSAGE', `no Debian kernel package ${JSON.stringify(spec)}; daxpin kernels lists them`);
  return exact[exact.length - 1][1];
}

function sameParams(a: Params, b: Params): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Per matching case, the outcome classes of its runs; null when no case ran (the kernel did not boot). */
function signatureOf(file: string): OutcomeSignature | null {
  if (!file || !fs.existsSync(file)) return null;
  const run = readRun(file);
  const sig: OutcomeSignature = {};
  for (const rec of run.attempts) {
    if (rec.status !== 'done' && rec.status !== 'abandoned') continue;
    const key = planKey(rec.config, rec.caseId);
    (sig[key] ??= []).push(outcomeClass(rec));
  }
  return Object.keys(sig).length > 0 ? sig : null;
}

async function packageDebs(k: ArchiveKernel): Promise<string[]> {
  const debs: string[] = [];
  for (const p of k.packages) debs.push(await downloadPackage(p));
  return debs;
}

/** The Debian changelog a kernel's packages carry (usr/share/doc/<pkg>/changelog.Debian.gz; changelog.gz in signed images), or null. */
export async function packageChangelog(debs: string[]): Promise<string | null> {
  for (const deb of debs) {
    const { stdout: listing } = await execFileAsync('dpkg-deb', ['-c', deb], { maxBuffer: 64 << 20 });
    const member = /\s(\.\/usr\/share\/doc\/[^/\s]+\/changelog(?:\.Debian)?\.gz)$/m.exec(listing)?.[1];
    if (!member) continue;
    const { stdout } = await execFileAsync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2" | gzip -dc', 'sh', deb, member], {
      maxBuffer: 256 << 20,
    });
    return stdout;
  }
  return null;
}

export async function bisectCommand(o: BisectOptions): Promise<number> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const params: Params = { good: o.good, bad: o.bad, cases: o.cases, config: o.config ?? ['ext4-dax'], repeat: o.repeat ?? 1 };
  const statePath = path.resolve(o.state ?? 'daxpin-bisect.json');
  const workDir = `${statePath.replace(/\.json$/, '')}.d`;
  const kernels = await archiveKernels({ log });
  const gi = pickVersion(kernels, o.good);
  const bi = pickVersion(kernels, o.bad);
  if (gi === bi) throw new DaxpinError('EUSAGE', '--good and --bad name the same package');
  const range = gi < bi ? kernels.slice(gi, bi + 1) : kernels.slice(bi, gi + 1).reverse();
  const byId = new Map(range.map((k) => [k.version, k]));

  let state: StateFile;
  if (fs.existsSync(statePath)) {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8')) as StateFile;
    if (!sameParams(state.params, params)) {
      throw new DaxpinError('EUSAGE', `${statePath} holds another bisection (${state.params.good} .. ${state.params.bad}); remove it or give --state`);
    }
    log(`daxpin bisect: resuming from ${statePath} (${Object.keys(state.verdicts).length} versions tried)`);
  } else {
    state = {
      params,
      versions: range.map((k) => k.version),
      releases: Object.fromEntries(range.map((k) => [k.version, k.release])),
      verdicts: {},
      signatures: {},
      runs: {},
    };
  }
  fs.mkdirSync(workDir, { recursive: true });
  const save = () => writeFileSynced(statePath, `${JSON.stringify(state, null, 2)}\n`);
  const name = (v: string) => `${state.releases[v]} (${v})`;
  log(`daxpin bisect: ${state.versions.length} packages from ${name(state.versions[0])} to ${name(state.versions[state.versions.length - 1])}`);

  const test = async (version: string): Promise<OutcomeSignature | null> => {
    if (version in state.signatures) return state.signatures[version];
    const k = byId.get(version);
    if (!k) throw new DaxpinError('EUSAGE', `package ${version} is no longer in the archive`);
    const outDir = path.join(workDir, `${k.release}-${k.version}-${Date.now()}`);
    log(`daxpin bisect: testing ${name(version)}`);
    let file = '';
    try {
      const debs = await packageDebs(k);
      const r = await vmCommand({
        kernels: [debs.join(',')],
        config: params.config,
        cases: params.cases,
        matrix: 'full',
        repeat: params.repeat,
        holdMs: o.holdMs,
        settleMs: o.settleMs,
        outDir,
        maxBoots: 2,
        log,
      });
      file = r.kernels[0]?.file ?? '';
    } catch (err) {
      log(`daxpin bisect: ${name(version)} could not be run: ${err instanceof Error ? err.message : String(err)}`);
    }
    const sig = signatureOf(file);
    state.signatures[version] = sig;
    state.runs[version] = file;
    save();
    return sig;
  };

  const goodEnd = state.versions[0];
  const badEnd = state.versions[state.versions.length - 1];
  const goodSig = await test(goodEnd);
  if (goodSig === null) throw new DaxpinError('EUSAGE', `--good ${name(goodEnd)} ran none of the cases (did it boot?)`);
  const badSig = await test(badEnd);
  if (badSig === null) throw new DaxpinError('EUSAGE', `--bad ${name(badEnd)} ran none of the cases (did it boot?)`);
  if (judgeStep(goodSig, badSig) === 'good') {
    log(`daxpin bisect: both ends show the same outcome:\n${signatureText(goodSig)}`);
    return 1;
  }
  log(`daxpin bisect: good outcome:\n${indent(signatureText(goodSig))}\ndaxpin bisect: bad outcome:\n${indent(signatureText(badSig))}`);

  const search: BisectState = { versions: state.versions, verdicts: state.verdicts };
  for (;;) {
    const step = nextStep(search);
    if (step.kind === 'done') {
      save();
      process.stdout.write(`${(await answer(step, state, byId)).join('\n')}\n`);
      return 0;
    }
    log(`daxpin bisect: ${step.remaining} untested between the bounds; next ${name(step.version)}`);
    const verdict = judgeStep(goodSig, await test(step.version));
    state.verdicts[step.version] = verdict;
    save();
    log(`daxpin bisect: ${name(step.version)} is ${verdict}`);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

async function answer(
  step: { good: string; bad: string; skipped: string[] },
  state: StateFile,
  byId: Map<string, ArchiveKernel>,
): Promise<string[]> {
  const name = (v: string) => `${state.releases[v]} (${v})`;
  const out = [
    `daxpin bisect: the outcome changes between ${name(step.good)} and ${name(step.bad)}`,
    `  good: ${name(step.good)}: ${state.runs[step.good]}`,
    `  bad:  ${name(step.bad)}: ${state.runs[step.bad]}`,
  ];
  if (step.skipped.length > 0) out.push(`  not testable between them (did not boot): ${step.skipped.map(name).join(', ')}`);
  const bad = byId.get(step.bad);
  let entries: ChangelogEntry[] = [];
  try {
    const text = bad ? await packageChangelog(await packageDebs(bad)) : null;
    if (text) entries = changesBetween(parseDebianChangelog(text), step.good);
  } catch (err) {
    out.push(`  (changelog not read: ${err instanceof Error ? err.message : String(err)})`);
  }
  const upstream = [...new Set(entries.flatMap((e) => e.upstream))].reverse();
  out.push(
    `  Debian changelog of ${step.bad} since ${step.good}: ${entries.length} entries${entries.length > 0 ? ` (${entries[entries.length - 1].version} .. ${entries[0].version})` : ''}`,
    `  upstream versions it names: ${upstream.length > 0 ? upstream.join(', ') : 'none'}`,
  );
  return out;
}
