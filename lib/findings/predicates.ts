// The findings table: each entry is a named, documented predicate over the fields of
// one case record, and the rows (dimensions) its findings are grouped by. A finding is
// one predicate × one value of its grouping key (× one subject, e.g. an errno); the
// engine (findings.ts) evaluates this table and nothing else decides what a finding is.
//
// A condition names a field by its path in the case record (`op.blockedUntilRelease`,
// `views.*` for any view, `kernelLog.*.signature` for any line), or a column of the
// case's rows in the matrix tables (`row.pin.longterm`, `row.mapping.mappedDuringOp`). A field a record does
// not carry (an older or newer schema) makes the record *unmeasured* for a predicate
// that `requires` it, so a missing field never reads as "absent". Adding a predicate,
// or one over a field the records gain later, is adding a row here.

/** Dimensions a finding can be grouped by; derived from the case's own rows (fields.ts dimensionOf). */
export type Dimension =
  | 'storage' // fsdax (statx STATX_ATTR_DAX seen on the test file) or page-cache
  | 'fsType'
  | 'config'
  | 'mappingState' // mapped or unmapped while the op ran
  | 'mapping'
  | 'pageSize' // pte or pmd
  | 'pinMethod'
  | 'opFamily' // truncate, fallocate, share (clone/dedupe/copy), evict, dax-flag
  | 'layoutOp';

export type Condition =
  | { field: string; eq: string | number | boolean | null }
  | { field: string; ne: string | number | boolean | null }
  | { field: string; in: (string | number | boolean | null)[] }
  /** A JavaScript regular expression source, matched against the string value. */
  | { field: string; matches: string }
  | { field: string; gt: number }
  /** A kernel log signature of the one splat table (verdict.ts isSevereKernelLine). */
  | { field: string; splat: true };

export interface Predicate {
  /** Stable: part of every finding id; never reused for another meaning. */
  id: string;
  /** One line for the report: what was observed. */
  title: string;
  /** Why it matters and how it is decided from the record (shown in the reports). */
  doc: string;
  /** 'violation' predicates mean something must never happen; 'behaviour' ones describe what a kernel does. */
  severity: 'violation' | 'behaviour';
  /** Fields a record must carry for the predicate to be decidable on it. */
  requires: string[];
  /** Every condition must hold (a wildcard path holds when any value it reaches does). */
  when: Condition[];
  groupBy: Dimension[];
  /**
   * A field whose value is part of the finding (errno, warning signature): each value
   * is its own finding. With a wildcard path, the matching values.
   */
  subject?: string;
  /** Only subject values that satisfy this condition's test count (its field is ignored). */
  subjectWhen?: Condition;
}

const PINNED: Condition[] = [
  { field: 'status', in: ['done', 'abandoned'] },
  { field: 'pin.ok', eq: true },
  { field: 'pinMethod', ne: 'none' },
  { field: 'op.started', eq: true },
];

export const PREDICATES: Predicate[] = [
  {
    id: 'foreign-after-early-return',
    title: 'op returned while the pin was held, and bytes of another file reached a view',
    doc:
      'The layout op returned before the pin was released (op.blockedUntilRelease false), and afterwards a view ' +
      '(buffer, pipe, file, peer or canary) held bytes of another file: a block freed under a pin was reused.',
    severity: 'violation',
    requires: ['op.blockedUntilRelease', 'views'],
    when: [...PINNED, { field: 'op.returnedMs', ne: null }, { field: 'op.blockedUntilRelease', eq: false }, { field: 'views.*', eq: 'foreign' }],
    groupBy: ['storage', 'mappingState'],
  },
  {
    id: 'foreign-data',
    title: 'bytes of another file reached a view although the op waited',
    doc: 'A view held bytes of another file, and the op did not return before the release (or not at all).',
    severity: 'violation',
    requires: ['op.blockedUntilRelease', 'views'],
    when: [{ field: 'op.blockedUntilRelease', eq: true }, { field: 'views.*', eq: 'foreign' }],
    groupBy: ['storage', 'mappingState', 'opFamily'],
  },
  {
    id: 'returned-while-pinned',
    title: 'op on a pinned file returned while the pin was held',
    doc:
      'On fsdax the blocks of a file are its pages: an op that frees or moves blocks must wait for pins to drop ' +
      '(break layouts); page cache need not. This op succeeded before the release (views intact or not).',
    severity: 'behaviour',
    requires: ['op.blockedUntilRelease'],
    when: [...PINNED, { field: 'op.ok', eq: true }, { field: 'op.blockedUntilRelease', eq: false }, { field: 'op.hung', eq: null }],
    groupBy: ['storage', 'mappingState', 'opFamily'],
  },
  {
    id: 'waited-for-release',
    title: 'op waited until the pin was released',
    doc: 'The op returned only after the pin was released (op.blockedUntilRelease).',
    severity: 'behaviour',
    requires: ['op.blockedUntilRelease'],
    when: [...PINNED, { field: 'op.blockedUntilRelease', eq: true }, { field: 'op.hung', eq: null }],
    groupBy: ['storage', 'mappingState', 'opFamily'],
  },
  {
    id: 'waited-in-D',
    title: 'op waited for the pin in uninterruptible sleep (D)',
    doc:
      'The op waited for the pin (op.blockedUntilRelease: asleep in its syscall at the release, returned after it), ' +
      'and its thread was seen in task state D (op.wait, sampled during the hold): unkillable until the pin drops; the subject is where (wchan). ' +
      'A D sleep of an op that did not wait for the pin (writeback, say) is not this finding.',
    severity: 'behaviour',
    requires: ['op.wait', 'op.blockedUntilRelease'],
    when: [{ field: 'op.blockedUntilRelease', eq: true }, { field: 'op.wait.state', eq: 'D' }],
    groupBy: ['storage', 'opFamily'],
    subject: 'op.wait.wchan',
  },
  {
    id: 'foreign-from',
    title: 'whose bytes a foreign view holds',
    doc: 'A view held bytes of another file; the subject says whose (viewDetail.*.foreignFrom: canary, peer, file, other).',
    severity: 'violation',
    requires: ['viewDetail'],
    when: [{ field: 'views.*', eq: 'foreign' }],
    groupBy: ['storage', 'mappingState'],
    subject: 'viewDetail.*.foreignFrom.*',
  },
  {
    id: 'shifted-view',
    title: 'a view holds bytes of this file at another page index',
    doc: 'After the op a view held the file (or its peer) bytes shifted to another page index (views.* shifted): collapse/insert moved them.',
    severity: 'behaviour',
    requires: ['views'],
    when: [...PINNED, { field: 'views.*', eq: 'shifted' }],
    groupBy: ['storage', 'opFamily', 'mappingState'],
  },
  {
    id: 'hung-after-release',
    title: 'op did not return after the pin was released',
    doc:
      'The op was still stuck after release + settle: signalled, it returned EINTR (interruptible), stayed stuck ' +
      '(uninterruptible), or returned its result (woken-by-signal: nothing had woken its wait, a lost wake-up).',
    severity: 'violation',
    requires: ['op.hung'],
    when: [{ field: 'op.hung', in: ['interruptible', 'uninterruptible', 'woken-by-signal'] }],
    groupBy: ['storage', 'opFamily', 'pinMethod'],
    subject: 'op.hung',
  },
  {
    id: 'kernel-splat',
    title: 'WARN/BUG/Oops or lockup in the kernel log during the case',
    doc: 'A kernel log line of the splat table (WARNING, BUG, Oops, lockdep, hung task, KASAN, ...), by its normalised signature.',
    severity: 'violation',
    requires: ['kernelLog'],
    when: [{ field: 'kernelLog.*.signature', splat: true }],
    groupBy: ['storage'],
    subject: 'kernelLog.*.signature',
    subjectWhen: { field: '', splat: true },
  },
  {
    id: 'longterm-pin-on-fsdax',
    title: 'long-term pin (FOLL_LONGTERM) accepted on fsdax',
    doc: 'IORING_REGISTER_BUFFERS succeeded on a verified DAX file: the filesystem could not reclaim the blocks while it lives.',
    severity: 'violation',
    requires: ['pin.ok', 'daxVerified'],
    when: [{ field: 'row.pin.longterm', eq: true }, { field: 'pin.ok', eq: true }, { field: 'daxVerified', eq: true }],
    groupBy: ['fsType'],
  },
  {
    id: 'pin-refused',
    title: 'pin refused',
    doc: 'The pin method could not take its pin; the errno is the subject.',
    severity: 'behaviour',
    requires: ['pin.ok'],
    when: [{ field: 'status', eq: 'done' }, { field: 'map.ok', eq: true }, { field: 'pin.ok', eq: false }, { field: 'pin.errno', ne: null }],
    groupBy: ['pinMethod', 'storage'],
    subject: 'pin.errno',
  },
  {
    id: 'crashed',
    title: 'the kernel crashed or wedged during the case',
    doc: 'The guest kernel panicked or stopped answering while the case ran (status crashed).',
    severity: 'violation',
    requires: ['status'],
    when: [{ field: 'status', eq: 'crashed' }],
    groupBy: ['config'],
  },
];
