// Typed facade over the C++ addon (native/). The addon is thin: every function is
// one syscall (or one io_uring step); every failure is a Node-style system error.
import path from 'node:path';

/** A Node-style system error as thrown or rejected by the addon. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export function isSystemError(e: unknown): e is SystemError {
  return e instanceof Error && typeof (e as SystemError).code === 'string' && typeof (e as SystemError).syscall === 'string';
}

/** The result of a call that may block in the kernel; it runs on a thread of its own. */
export interface BlockingCall {
  /** Kernel thread id of the thread making the call (for /proc/<pid>/task/<tid>). */
  tid: number;
  promise: Promise<CallReturn>;
}

/** A blocking call's result, with its boundaries on CLOCK_MONOTONIC (process.hrtime's clock), in ns. */
export interface CallReturn {
  ret: number;
  aux: number;
  enteredNs: number;
  exitedNs: number;
}

/** The boundaries of the call a pool thread runs now (or ran last); 0 where not reached yet. */
export interface CallPhase {
  enteredNs: number;
  exitedNs: number;
}

export type Sharing = 'shared' | 'private' | 'sync';

export interface MappingHandle {
  readonly address: bigint;
  readonly length: number;
  readonly mapped: boolean;
  read(offset: number, length: number): { sigbus: boolean; data: Buffer };
  write(offset: number, data: Buffer): { sigbus: boolean };
  /** Reads one byte every `stride` bytes (a read fault per page), copying nothing. */
  touch(offset: number, length: number, stride: number): { sigbus: boolean };
  unmap(): void;
}

export interface RingHandle {
  registerBuffers(mapping: MappingHandle, offset: number, length: number): void;
  unregisterBuffers(): void;
  startIo(op: 'read' | 'write', fd: number, mapping: MappingHandle, offset: number, length: number, fileOffset: number): BlockingCall;
  close(): void;
}

/** A legacy AIO context (io_setup); one request at a time. */
export interface AioHandle {
  startIo(op: 'read' | 'write', fd: number, mapping: MappingHandle, offset: number, length: number, fileOffset: number): BlockingCall;
  /** io_destroy: waits for a request still in flight. */
  close(): BlockingCall;
}

/** An RDMA device opened through libibverbs (dlopen'd at run time), with a protection domain. */
export interface RdmaDeviceHandle {
  /** The provider's on-demand-paging capabilities (IBV_ODP_* bits), null when it cannot say. */
  odpCaps(): { general: number; rc: number } | null;
  /** ibv_reg_mr of the range, writable; with IBV_ACCESS_ON_DEMAND when onDemand. */
  regMr(mapping: MappingHandle, offset: number, length: number, onDemand: boolean): void;
  deregMr(): void;
  close(): void;
}

export interface Statx {
  attributes: number;
  attributesMask: number;
  size: number;
  blocks: number;
  ino: number;
  dev: string;
  mode: number;
}

export interface Extent {
  logical: number;
  physical: number;
  length: number;
  flags: number;
}

interface Addon {
  Mapping: new (fd: number, length: number, offset: number, sharing: Sharing, align: number) => MappingHandle;
  Ring: new () => RingHandle;
  /** pread() at fileOffset into the mapping's [offset, offset+length). */
  startRead(fd: number, mapping: MappingHandle, offset: number, length: number, fileOffset: number): BlockingCall;
  /** pwrite() at fileOffset from the mapping's [offset, offset+length). */
  startWrite(fd: number, mapping: MappingHandle, offset: number, length: number, fileOffset: number): BlockingCall;
  pipe(capacity: number): [number, number];
  vmsplice(pipeWriteFd: number, mapping: MappingHandle, offset: number, length: number): number;
  startFtruncate(fd: number, length: number): BlockingCall;
  startFallocate(fd: number, mode: number, offset: number, length: number): BlockingCall;
  startFiclone(destFd: number, srcFd: number): BlockingCall;
  startFicloneRange(destFd: number, srcFd: number, srcOffset: number, length: number, destOffset: number): BlockingCall;
  startDedupeRange(srcFd: number, srcOffset: number, length: number, destFd: number, destOffset: number): BlockingCall;
  startCopyFileRange(inFd: number, inOffset: number, outFd: number, outOffset: number, length: number): BlockingCall;
  startUnlink(path: string): BlockingCall;
  startClose(fd: number): BlockingCall;
  startSyncfs(fd: number): BlockingCall;
  startFsSetXattr(fd: number, xflags: number, extsize: number): BlockingCall;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  startUmount(target: string, flags: number): BlockingCall;
  statx(path: string): Statx;
  /** FS_IOC_FIEMAP; sync: FIEMAP_FLAG_SYNC (writeback first). */
  fiemap(fd: number, offset: number, length: number, sync: boolean): Extent[];
  fsGetXattr(fd: number): { xflags: number; extsize: number };
  kmsgOpen(fromEnd: boolean): number;
  kmsgRead(fd: number): string[];
  tgkill(tid: number, signal: number): void;
  callPhase(tid: number): CallPhase;
  /** Bytes of the range the page tables map huge (PAGEMAP_SCAN, PAGE_IS_HUGE); ENOTTY before Linux 6.7. */
  pagemapScanHuge(address: bigint, length: number): number;
  socketpair(): [number, number];
  /** NBD_SET_SOCK, NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS, NBD_SET_TIMEOUT on an open /dev/nbdN. */
  nbdConfigure(deviceFd: number, socketFd: number, blockSize: number, blocks: number, timeoutSeconds: number): void;
  /** NBD_DO_IT: settles when the device's connection ends. */
  startNbdDoIt(deviceFd: number): BlockingCall;
  nbdDisconnect(deviceFd: number): void;
  Aio: new () => AioHandle;
  /** FIFREEZE / FITHAW of the filesystem the fd is on. */
  startFreeze(fd: number): BlockingCall;
  startThaw(fd: number): BlockingCall;
  /** Absent when the addon was built without the verbs headers (libibverbs-dev). */
  RdmaDevice?: new (name: string) => RdmaDeviceHandle;
  INTERRUPT_SIGNAL: number;
}

// dist/lib/native.js -> build/Release/daxpin.node at the package root.
export const native: Addon = require(path.join(__dirname, '..', '..', 'build', 'Release', 'daxpin.node'));

// Kernel ABI constants used with the addon (uapi headers).
export const STATX_ATTR_DAX = 0x00200000;
export const FS_XFLAG_DAX = 0x00008000;
export const FS_XFLAG_EXTSIZE = 0x00000800;
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const FALLOC_FL_INSERT_RANGE = 0x20;
export const MNT_FORCE = 1;
export const MNT_DETACH = 2;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
/** ibv_odp_general_caps / ibv_odp_transport_cap_bits (infiniband/verbs.h). */
export const IBV_ODP_SUPPORT = 1 << 0;
export const IBV_ODP_SUPPORT_WRITE = 1 << 2;

/** Now on CLOCK_MONOTONIC in ms: the clock of the addon's call boundaries. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function isDax(st: Statx): boolean {
  return (st.attributes & STATX_ATTR_DAX) !== 0;
}
