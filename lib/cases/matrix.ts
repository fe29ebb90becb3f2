// The case matrix is data: four tables crossed. One place says what a mapping, a
// pin method and a layout op are; the timeline interprets these descriptions.

export type PageSize = 'pte' | 'pmd';
export type Sharing = 'shared' | 'private' | 'sync';

export interface Mapping {
  name: string;
  pageSize: PageSize;
  sharing: Sharing;
  /** false: munmap before the op starts (the pin alone holds the pages). */
  mappedDuringOp: boolean;
}

/** How a pin is made and released: one entry each in lib/engine/pins.ts. */
export type PinPath = 'none' | 'odirect' | 'uring' | 'aio' | 'uring-fixed' | 'vmsplice' | 'rdma-mr' | 'rdma-mr-odp';

export interface PinMethod {
  name: string;
  path: PinPath;
  /** The kernel writes into the pinned pages when the pin completes (a read into the mapping). */
  kernelWritesPages: boolean;
  /** FOLL_LONGTERM: the kernel is asked to keep the pin indefinitely (refused on fsdax). */
  longterm: boolean;
  /**
   * The I/O peer whose answer completes the pin; null when none takes part. 'fuse': a
   * FUSE file opened with direct_io; 'nbd': an NBD block device (the block layer builds
   * bios from the pages and releases them in its completion path).
   */
  peer: 'fuse' | 'nbd' | null;
  summary: string;
}

export type OpKind =
  | 'truncate'
  | 'punch-hole'
  | 'zero-range'
  | 'collapse-range'
  | 'insert-range'
  | 'ficlone'
  | 'ficlonerange'
  | 'dedupe'
  | 'copy-range'
  | 'unlink'
  | 'dax-flag'
  | 'freeze'
  | 'umount';

export interface LayoutOp {
  name: string;
  kind: OpKind;
  /** For truncate: where to cut, in pages relative to the pinned range start ('zero' = size 0). */
  truncateTo?: 'pin-start' | 'zero';
  /** For ops with a second file: whether the pinned file is the destination (its bytes replaced by the peer's) or the source (its blocks shared with the peer). */
  pinnedFileIs?: 'dest' | 'source';
  /** For umount: unlink the pinned file before its last close. */
  unlinkFirst?: boolean;
  summary: string;
}

export interface Config {
  name: string;
  fsType: 'ext4' | 'xfs' | 'tmpfs';
  dax: 'always' | 'inode' | 'off';
  summary: string;
}

// Page counts. A PTE test file is smaller than 2 MiB so no PMD fault is possible;
// a PMD file covers two 2 MiB extents so the first can be PMD-mapped.
export const PAGE = 4096;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PTE_FILE_PAGES = 64;
export const PMD_FILE_PAGES = 1024;
/** The pinned range: PIN_PAGES pages starting at PIN_FIRST_PAGE of the file. */
export const PIN_FIRST_PAGE = 16;
export const PIN_PAGES = 4;

export const CONFIGS: Config[] = [
  { name: 'ext4-dax', fsType: 'ext4', dax: 'always', summary: 'ext4 mounted -o dax (fsdax)' },
  { name: 'xfs-dax', fsType: 'xfs', dax: 'always', summary: 'XFS reflink=1 mounted -o dax=always (fsdax)' },
  { name: 'xfs-dax-inode', fsType: 'xfs', dax: 'inode', summary: 'XFS reflink=1, dax=inode, FS_XFLAG_DAX set on the test file' },
  { name: 'ext4', fsType: 'ext4', dax: 'off', summary: 'ext4, page cache' },
  { name: 'xfs', fsType: 'xfs', dax: 'off', summary: 'XFS reflink=1, page cache' },
  { name: 'tmpfs', fsType: 'tmpfs', dax: 'off', summary: 'tmpfs (shmem), page cache' },
];

export const MAPPINGS: Mapping[] = [
  { name: 'pte-shared', pageSize: 'pte', sharing: 'shared', mappedDuringOp: true },
  { name: 'pte-shared-unmapped', pageSize: 'pte', sharing: 'shared', mappedDuringOp: false },
  { name: 'pte-private', pageSize: 'pte', sharing: 'private', mappedDuringOp: true },
  { name: 'pte-sync', pageSize: 'pte', sharing: 'sync', mappedDuringOp: true },
  { name: 'pmd-shared', pageSize: 'pmd', sharing: 'shared', mappedDuringOp: true },
  { name: 'pmd-shared-unmapped', pageSize: 'pmd', sharing: 'shared', mappedDuringOp: false },
  { name: 'pmd-sync', pageSize: 'pmd', sharing: 'sync', mappedDuringOp: true },
];

export const PIN_METHODS: PinMethod[] = [
  { name: 'none', path: 'none', kernelWritesPages: false, longterm: false, peer: null, summary: 'control: no pin, the op runs alone' },
  { name: 'odirect-read', path: 'odirect', kernelWritesPages: true, longterm: false, peer: 'fuse', summary: 'pread() of an O_DIRECT FUSE file into the mapping' },
  { name: 'odirect-write', path: 'odirect', kernelWritesPages: false, longterm: false, peer: 'fuse', summary: 'pwrite() to an O_DIRECT FUSE file from the mapping' },
  { name: 'uring-read', path: 'uring', kernelWritesPages: true, longterm: false, peer: 'fuse', summary: 'io_uring READ of an O_DIRECT FUSE file into the mapping' },
  { name: 'uring-write', path: 'uring', kernelWritesPages: false, longterm: false, peer: 'fuse', summary: 'io_uring WRITE to an O_DIRECT FUSE file from the mapping' },
  { name: 'aio-read', path: 'aio', kernelWritesPages: true, longterm: false, peer: 'fuse', summary: 'io_submit (legacy AIO) READ of an O_DIRECT FUSE file into the mapping' },
  { name: 'aio-write', path: 'aio', kernelWritesPages: false, longterm: false, peer: 'fuse', summary: 'io_submit (legacy AIO) WRITE to an O_DIRECT FUSE file from the mapping' },
  { name: 'nbd-odirect-read', path: 'odirect', kernelWritesPages: true, longterm: false, peer: 'nbd', summary: 'pread() of an O_DIRECT NBD block device into the mapping' },
  { name: 'nbd-odirect-write', path: 'odirect', kernelWritesPages: false, longterm: false, peer: 'nbd', summary: 'pwrite() to an O_DIRECT NBD block device from the mapping' },
  { name: 'nbd-uring-read', path: 'uring', kernelWritesPages: true, longterm: false, peer: 'nbd', summary: 'io_uring READ of an O_DIRECT NBD block device into the mapping' },
  { name: 'nbd-uring-write', path: 'uring', kernelWritesPages: false, longterm: false, peer: 'nbd', summary: 'io_uring WRITE to an O_DIRECT NBD block device from the mapping' },
  { name: 'nbd-aio-read', path: 'aio', kernelWritesPages: true, longterm: false, peer: 'nbd', summary: 'io_submit (legacy AIO) READ of an O_DIRECT NBD block device into the mapping' },
  { name: 'nbd-aio-write', path: 'aio', kernelWritesPages: false, longterm: false, peer: 'nbd', summary: 'io_submit (legacy AIO) WRITE to an O_DIRECT NBD block device from the mapping' },
  { name: 'uring-fixed', path: 'uring-fixed', kernelWritesPages: false, longterm: true, peer: null, summary: 'IORING_REGISTER_BUFFERS on the mapping (FOLL_LONGTERM)' },
  { name: 'vmsplice', path: 'vmsplice', kernelWritesPages: false, longterm: false, peer: null, summary: 'vmsplice() of the mapped pages into a pipe, no SPLICE_F_GIFT' },
  { name: 'rdma-mr', path: 'rdma-mr', kernelWritesPages: false, longterm: true, peer: null, summary: 'ibv_reg_mr on the mapping over soft-RoCE (FOLL_LONGTERM until ibv_dereg_mr)' },
  { name: 'rdma-mr-odp', path: 'rdma-mr-odp', kernelWritesPages: false, longterm: false, peer: null, summary: 'ibv_reg_mr with IBV_ACCESS_ON_DEMAND on the mapping over soft-RoCE (no pin: the device faults pages in)' },
];

export const LAYOUT_OPS: LayoutOp[] = [
  { name: 'truncate-shrink', kind: 'truncate', truncateTo: 'pin-start', summary: 'ftruncate to the start of the pinned range' },
  { name: 'truncate-zero', kind: 'truncate', truncateTo: 'zero', summary: 'ftruncate to 0' },
  { name: 'punch-hole', kind: 'punch-hole', summary: 'fallocate PUNCH_HOLE over the pinned range' },
  { name: 'zero-range', kind: 'zero-range', summary: 'fallocate ZERO_RANGE over the pinned range' },
  { name: 'collapse-range', kind: 'collapse-range', summary: 'fallocate COLLAPSE_RANGE of the pinned range' },
  { name: 'insert-range', kind: 'insert-range', summary: 'fallocate INSERT_RANGE at the pinned range' },
  { name: 'ficlone-dest', kind: 'ficlone', pinnedFileIs: 'dest', summary: 'FICLONE another file onto the pinned file' },
  { name: 'ficlone-src', kind: 'ficlone', pinnedFileIs: 'source', summary: 'FICLONE the pinned file to a new file' },
  { name: 'ficlonerange', kind: 'ficlonerange', pinnedFileIs: 'dest', summary: 'FICLONERANGE another file over the pinned range' },
  { name: 'dedupe', kind: 'dedupe', pinnedFileIs: 'dest', summary: 'FIDEDUPERANGE an identical file over the pinned range' },
  { name: 'copy-range', kind: 'copy-range', pinnedFileIs: 'dest', summary: 'copy_file_range another file over the pinned range' },
  { name: 'unlink', kind: 'unlink', summary: 'unlink the pinned file and close it (eviction once unmapped)' },
  { name: 'dax-flag', kind: 'dax-flag', summary: 'FS_IOC_FSSETXATTR flipping FS_XFLAG_DAX on the pinned file' },
  { name: 'freeze', kind: 'freeze', summary: 'FIFREEZE the filesystem, then FITHAW' },
  { name: 'umount', kind: 'umount', unlinkFirst: false, summary: 'close the pinned file and unmount the filesystem (eviction at unmount), then mount it again' },
  { name: 'unlink-umount', kind: 'umount', unlinkFirst: true, summary: 'unlink and close the pinned file, unmount the filesystem, then mount it again' },
];

export interface Case {
  config: Config;
  mapping: Mapping;
  pinMethod: PinMethod;
  layoutOp: LayoutOp;
  /** pinMethod.layoutOp.mapping — unique within a config. */
  id: string;
}

export function caseId(pinMethod: string, layoutOp: string, mapping: string): string {
  return `${pinMethod}.${layoutOp}.${mapping}`;
}

/**
 * Which mappings the default plan crosses with every pin and op. The full matrix
 * (`--matrix full`) crosses all of them; the default keeps the run short enough for
 * nightly qemu runs while covering PTE/PMD, shared/private/sync and unmapped.
 */
export const DEFAULT_MAPPINGS = ['pte-shared', 'pte-shared-unmapped', 'pte-private', 'pmd-shared'];

export type MatrixName = 'default' | 'full' | 'smoke';

const SMOKE_PINS = ['none', 'odirect-read', 'uring-fixed', 'vmsplice'];
const SMOKE_OPS = ['truncate-shrink', 'punch-hole', 'ficlone-src'];

export function mappingsFor(matrix: MatrixName): Mapping[] {
  if (matrix === 'full') return MAPPINGS;
  if (matrix === 'smoke') return MAPPINGS.filter((m) => m.name === 'pte-shared' || m.name === 'pmd-shared');
  return MAPPINGS.filter((m) => DEFAULT_MAPPINGS.includes(m.name));
}

export function findPinMethod(name: string): PinMethod | undefined {
  return PIN_METHODS.find((p) => p.name === name);
}

export function findConfig(name: string): Config | undefined {
  return CONFIGS.find((c) => c.name === name);
}

/** Cross the tables for one config. */
export function casesFor(config: Config, matrix: MatrixName = 'default'): Case[] {
  const pins = matrix === 'smoke' ? PIN_METHODS.filter((p) => SMOKE_PINS.includes(p.name)) : PIN_METHODS;
  const ops = matrix === 'smoke' ? LAYOUT_OPS.filter((o) => SMOKE_OPS.includes(o.name)) : LAYOUT_OPS;
  const out: Case[] = [];
  for (const mapping of mappingsFor(matrix)) {
    for (const pinMethod of pins) {
      for (const layoutOp of ops) {
        out.push({ config, mapping, pinMethod, layoutOp, id: caseId(pinMethod.name, layoutOp.name, mapping.name) });
      }
    }
  }
  return out;
}

/** Shell-style glob (`*`, `?`) over case ids or "config/caseId". */
export function globToRegExp(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

export function filterCases(cases: Case[], globs: string[] | undefined): Case[] {
  if (!globs || globs.length === 0) return cases;
  const res = globs.map(globToRegExp);
  return cases.filter((c) => res.some((re) => re.test(c.id) || re.test(`${c.config.name}/${c.id}`)));
}
