// Raw facts of a daxpin case record against the reference's (case.c) for the same
// case on the same filesystem: pure, so what counts as "the same" is one function.
// Values that differ by nature between two runs (file ids, block addresses, times)
// are left out; everything the kernel decides is compared.
import { CaseRecord, FileFacts, ViewClass } from '../../lib/outcome';
import { ReferenceFacts } from './client';

/** The part of a file's facts two runs share: not the physical block addresses. */
export function fileShape(f: FileFacts | null | undefined): unknown {
  if (!f) return null;
  return { size: f.size, blocks: f.blocks, extents: f.extents?.map((e) => ({ logical: e.logical, length: e.length, flags: e.flags })) ?? null };
}

/**
 * A view's page letters as daxpin's class, where the letters say it: another file's
 * bytes anywhere make it foreign, then moved bytes make it shifted; a page mixing
 * records ('m') says too little (o+z is mixed, o+f foreign): null.
 */
export function pagesClass(pages: string): ViewClass | null {
  const read = [...pages].filter((c) => c !== '-');
  if (read.length === 0) return 'n/a';
  if (read.includes('f')) return 'foreign';
  if (read.includes('m')) return null;
  if (read.includes('s')) return 'shifted';
  const LETTER: Record<string, ViewClass> = { o: 'original', w: 'written', p: 'written', z: 'zero', g: 'garbage' };
  const classes = new Set(read.map((c) => LETTER[c]));
  return classes.size === 1 ? [...classes][0] : 'mixed';
}

const VIEWS = ['buffer', 'pipe', 'file', 'peer'] as const;

/** Differences between daxpin's record and the reference's facts; [] when they agree. */
export function factDifferences(rec: CaseRecord, ref: ReferenceFacts): string[] {
  const d: string[] = [];
  const same = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) d.push(`${what}: daxpin ${JSON.stringify(a)}, reference ${JSON.stringify(b)}`);
  };
  // Both say whether the case can run at all (a filesystem op needs the filesystem's mount).
  if (rec.status === 'unsupported' || ref.unsupported !== undefined) {
    same('unsupported', rec.status === 'unsupported', ref.unsupported !== undefined);
    return d;
  }
  if (rec.status !== 'done') d.push(`daxpin's case did not finish: ${rec.status} ${rec.error ?? ''}`);
  same('map', { ok: rec.map.ok, errno: rec.map.errno }, ref.map);
  if (!ref.map.ok) return d;
  const op = ref.op!;
  same('pin', { ok: rec.pin.ok, errno: rec.pin.errno, held: rec.pin.held }, ref.pin);
  same('op', { ok: rec.op.ok, errno: rec.op.errno, result: rec.op.result, dedupe: rec.op.dedupe, hung: rec.op.hung }, { ok: op.ok, errno: op.errno, result: op.result, dedupe: op.dedupe, hung: op.hung });
  // Timing-dependent: an op that sleeps in its call for the dwell (writeback of a
  // 4 MiB file before a collapse, say, on a busy machine) is released on that evidence,
  // and is then "blocked until release" and writes no canaries; whether it sleeps that
  // long is the disk's and the scheduler's doing, not the pin's. Where either side saw
  // its op asleep in its call while holding (FIFREEZE's RCU grace period lasts about
  // the 25 ms dwell: its release came on evidence or not, and the thaw after it may
  // still be running at the release, not asleep), these are not compared; everything
  // else still is.
  if (!sleptWhileHolding(rec, ref)) {
    same('op.blockedUntilRelease', rec.op.blockedUntilRelease, op.blockedUntilRelease);
    same('canary.files', rec.canary.files, ref.canary!.files);
    same('views.canary', rec.views.canary, pagesClass(ref.views!.pages.canary));
  }
  same('release', { ok: rec.release.ok, errno: rec.release.errno, result: rec.release.result }, ref.release);
  same('file.before', fileShape(rec.file.before), fileShape(ref.file!.before));
  same('file.after', fileShape(rec.file.after), fileShape(ref.file!.after));
  same('file.pathAfter', rec.file.pathAfter, ref.file!.pathAfter);
  same('sigbus', [...rec.sigbus].sort(), [...ref.sigbus!].sort());
  const pages = ref.views!.pages;
  for (const v of VIEWS) {
    same(`views.pages.${v}`, rec.viewDetail[v]?.pages ?? '----', pages[v]);
    const c = pagesClass(pages[v]);
    if (c !== null) same(`views.${v}`, rec.views[v], c);
  }
  return d;
}

/** Either side saw its op asleep in its call while the pin was held: where the case's outcome may be timing's. */
export function sleptWhileHolding(rec: CaseRecord, ref: ReferenceFacts): boolean {
  const op = ref.op;
  return rec.op.asleepAtRelease || rec.op.wait !== null || (op !== undefined && (op.asleepAtRelease || op.seenAsleep));
}
