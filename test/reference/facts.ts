// Raw facts of a daxpin case record against the reference's (case.c) for the same
// case on the same filesystem: pure, so what counts as "the same" is one function.
// Values that differ by nature between two runs (file ids, block addresses, times)
// are left out; everything the kernel decides is compared.
import { CaseRecord, ViewClass } from '../../lib/outcome';
import { FileFacts, ReferenceFacts } from './client';

/** Facts a case record may carry (issue 11); absent in records made before them. */
interface Observed {
  op?: { result?: number | null; dedupe?: { status: number; bytesDeduped: number } | null };
  file?: { before: FileFacts | null; after: FileFacts | null } | null;
  release?: { result?: number | null };
  views?: { pages?: Partial<Record<'buffer' | 'pipe' | 'file' | 'peer', string>> };
}

/** The part of a file's facts two runs share: not the physical block addresses. */
export function fileShape(f: FileFacts | null | undefined): unknown {
  if (!f) return f ?? null;
  return { size: f.size, blocks: f.blocks, extents: f.extents?.map((e) => ({ logical: e.logical, length: e.length, flags: e.flags })) ?? null };
}

/**
 * A view's page string as daxpin's class, where the string says it unambiguously;
 * null where it cannot (a page of this file's bytes at another index is original or
 * written by generation, which the string does not keep; a page mixing records).
 * In the peer view (the op's second file) its own bytes are original, and the pinned
 * file's bytes are what `peer` says.
 */
export function pagesClass(pages: string, view: 'buffer' | 'pipe' | 'file' | 'peer' | 'canary', peer: PeerRoles = { original: 'foreign', written: 'foreign' }): ViewClass | null {
  const read = [...pages].filter((c) => c !== '-');
  if (read.length === 0) return 'n/a';
  if (read.includes('f')) return 'foreign';
  if (read.some((c) => c === 's' || c === 'm')) return null;
  const classes = new Set<ViewClass>(
    read.map((c): ViewClass => {
      switch (c) {
        case 'o':
          return view === 'peer' ? peer.original : 'original';
        case 'w':
          return view === 'peer' ? peer.written : 'written';
        case 'p':
          return view === 'peer' ? 'original' : 'written';
        case 'z':
          return 'zero';
        default:
          return 'garbage';
      }
    }),
  );
  if (classes.has('foreign')) return 'foreign';
  return classes.size === 1 ? [...classes][0] : 'mixed';
}

/** What the pinned file's bytes are in the op's second file, as daxpin judges them. */
export interface PeerRoles {
  original: 'original' | 'foreign';
  written: 'original' | 'foreign';
}

/**
 * The clone of the pinned file (ficlone-src) holds the file's bytes, and the bytes
 * written before the op (vmsplice writes through the mapping) or before a clone that
 * waited for the release; a dedupe twin holds the file's bytes. Anything else of the
 * pinned file in a second file is another file's data (lib/engine/timeline.ts).
 */
export function peerRoles(rec: CaseRecord, blockedUntilRelease: boolean): PeerRoles {
  const op = rec.layoutOp;
  if (op === 'ficlone-src') return { original: 'original', written: rec.pinMethod === 'vmsplice' || blockedUntilRelease ? 'original' : 'foreign' };
  return { original: op === 'dedupe' ? 'original' : 'foreign', written: 'foreign' };
}

/** Differences between daxpin's record and the reference's facts; [] when they agree. */
export function factDifferences(rec: CaseRecord, ref: ReferenceFacts): string[] {
  const d: string[] = [];
  const same = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) d.push(`${what}: daxpin ${JSON.stringify(a)}, reference ${JSON.stringify(b)}`);
  };
  if (rec.status !== 'done') d.push(`daxpin's case did not finish: ${rec.status} ${rec.error ?? ''}`);
  same('map', rec.map, ref.map);
  if (!ref.map.ok) return d;
  same('pin', rec.pin, ref.pin);
  same('op', { ok: rec.op.ok, errno: rec.op.errno, hung: rec.op.hung }, { ok: ref.op!.ok, errno: ref.op!.errno, hung: ref.op!.hung });
  // Whether the op waited for the release: on page cache nothing waits, so this
  // compares equal unless one side's op did not really run in the kernel.
  same('op.blockedUntilRelease', rec.op.blockedUntilRelease, ref.op!.blockedUntilRelease);
  same('release', { ok: rec.release.ok, errno: rec.release.errno }, { ok: ref.release!.ok, errno: ref.release!.errno });
  same('sigbus', [...rec.sigbus].sort(), [...ref.sigbus!].sort());
  same('canary.files', rec.canary.files, ref.canary!.files);

  const o = rec as unknown as Observed;
  if (o.op && 'result' in o.op) same('op.result', o.op.result, ref.op!.result);
  if (o.op && 'dedupe' in o.op) same('op.dedupe', o.op.dedupe, ref.op!.dedupe);
  if (o.release && 'result' in o.release) same('release.result', o.release.result, ref.release!.result);
  if (o.file !== undefined) {
    same('file.before', fileShape(o.file?.before), fileShape(ref.file!.before));
    same('file.after', fileShape(o.file?.after), fileShape(ref.file!.after));
  }
  const pages = ref.views!.pages;
  for (const v of ['buffer', 'pipe', 'file', 'peer'] as const) {
    const recorded = o.views?.pages?.[v];
    if (recorded !== undefined) same(`views.pages.${v}`, recorded, pages[v]);
  }
  // Classes from the reference's own decoding, where its pages say one unambiguously.
  const roles = peerRoles(rec, ref.op!.blockedUntilRelease);
  for (const v of ['buffer', 'pipe', 'file', 'peer'] as const) {
    const c = pagesClass(pages[v], v, roles);
    if (c !== null) same(`views.${v}`, rec.views[v], c);
  }
  same('views.canary', rec.views.canary, pagesClass(pages.canary, 'canary'));
  return d;
}
