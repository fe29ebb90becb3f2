// `daxpin repro CASE --c`: a standalone C reproducer of one case, and the shell lines
// that prepare its filesystem (and, for O_DIRECT pins, a dm-delay block device whose
// I/O completes HOLD ms late: that is how long the pin is held). Generated from the
// case's rows in the matrix tables: one fragment per pin kind and per op kind, no
// per-case template. The program provokes and prints what it saw (when the op returned
// against the release, what each view holds); it decides nothing.

import { LAYOUT_OPS, MAPPINGS, PAGE, PIN_FIRST_PAGE, PIN_PAGES, PIN_METHODS, PMD_FILE_PAGES, PTE_FILE_PAGES, findConfig } from '../cases/matrix';
import type { Config, LayoutOp, Mapping, OpKind, PinMethod, PinPath } from '../cases/matrix';

export interface ReproOptions {
  /** How long the pin is held (the dm-delay delay; for vmsplice, before the pipe is drained). */
  holdMs: number;
  /** How long the op may take to return after the release before it is reported stuck. */
  settleMs: number;
  /** Canary bytes written after an op that returned while the pin was held. */
  canaryKb: number;
}

export const REPRO_DEFAULTS: ReproOptions = { holdMs: 200, settleMs: 2000, canaryKb: 1024 };

/** How each pin path takes its pin and releases it (the I/O direction is the pin method's kernelWritesPages column). */
interface PinFragment {
  /** Needs the dm-delay peer device (argv[2]). */
  peer: boolean;
  take: string;
  release: string;
}

const PIN_FRAGMENTS: Partial<Record<PinPath, PinFragment>> = {
  none: { peer: false, take: '/* control: no pin */', release: '/* nothing held */' },
  vmsplice: {
    peer: false,
    take: `if (pipe(pipefd) != 0) die("pipe");
  fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
  struct iovec iov = { pinned, PIN_LEN };
  if (vmsplice(pipefd[1], &iov, 1, 0) != (ssize_t)PIN_LEN) { pin_errno = errno; pin_ok = 0; }
  /* written through the mapping after vmsplice: a pipe that shows these bytes holds the pages, not a copy */
  else fill(pinned, PIN_LEN, ID_WRITTEN, ${PIN_FIRST_PAGE});`,
    release: `pipe_len = read_full(pipefd[0], pipe_bytes, PIN_LEN);
  close(pipefd[0]); close(pipefd[1]);`,
  },
  odirect: {
    peer: true,
    take: `if (pthread_create(&io_thread, NULL, peer_io, NULL) != 0) die("pthread_create");
  msleep(20); /* the I/O is submitted and waits in dm-delay: the pages are pinned */`,
    release: 'pthread_join(io_thread, NULL);',
  },
};

/** The op as one C expression on `fd` (the pinned file) and `peerfd` (its second file); < 0 is failure. */
const OP_FRAGMENTS: Partial<Record<OpKind, (op: LayoutOp) => string>> = {
  truncate: (op) => `ftruncate(fd, ${op.truncateTo === 'zero' ? '0' : 'PIN_OFF'})`,
  'punch-hole': () => 'fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN)',
  'zero-range': () => 'fallocate(fd, FALLOC_FL_ZERO_RANGE, PIN_OFF, PIN_LEN)',
  'collapse-range': () => 'fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, PIN_OFF, PIN_LEN)',
  'insert-range': () => 'fallocate(fd, FALLOC_FL_INSERT_RANGE, PIN_OFF, PIN_LEN)',
  ficlone: (op) => (op.pinnedFileIs === 'source' ? 'ioctl(peerfd, FICLONE, fd)' : 'ioctl(fd, FICLONE, peerfd)'),
  ficlonerange: () => 'clone_range(fd, peerfd)',
  'copy-range': () => 'copy_range(fd, peerfd)',
  unlink: () => 'unlink_and_close()',
  'dax-flag': () => 'flip_dax_flag(fd)',
};

/** null when the generator covers this pin method and layout op, else why not. */
export function reproSupport(pinMethod: string, layoutOp: string): string | null {
  const pin = PIN_METHODS.find((p) => p.name === pinMethod);
  const op = LAYOUT_OPS.find((o) => o.name === layoutOp);
  if (!pin) return `unknown pin method ${pinMethod}`;
  if (!op) return `unknown layout op ${layoutOp}`;
  if (!PIN_FRAGMENTS[pin.path]) return `the C reproducer does not cover pin method ${pinMethod} yet (vmsplice, odirect-read, odirect-write, none)`;
  if (!OP_FRAGMENTS[op.kind]) return `the C reproducer does not cover layout op ${layoutOp} yet`;
  return null;
}

export interface ReproCase {
  config: Config;
  mapping: Mapping;
  pinMethod: PinMethod;
  layoutOp: LayoutOp;
}

/** The rows of `config/caseId` from the matrix tables; throws a one-line message when it names none. */
export function reproCase(configName: string, caseId: string): ReproCase {
  const config = findConfig(configName);
  if (!config) throw new Error(`unknown config "${configName}"`);
  const [pin, op, map] = caseId.split('.');
  const pinMethod = PIN_METHODS.find((p) => p.name === pin);
  const layoutOp = LAYOUT_OPS.find((o) => o.name === op);
  const mapping = MAPPINGS.find((m) => m.name === map);
  if (!pinMethod || !layoutOp || !mapping) throw new Error(`"${caseId}" is not a case id (pinMethod.layoutOp.mapping; see daxpin list)`);
  const why = reproSupport(pin, op);
  if (why) throw new Error(why);
  return { config, mapping, pinMethod, layoutOp };
}

function mmapFlags(m: Mapping): string {
  if (m.sharing === 'private') return 'MAP_PRIVATE';
  if (m.sharing === 'sync') return 'MAP_SHARED_VALIDATE | MAP_SYNC';
  return 'MAP_SHARED';
}

/** The C program for one case. */
export function renderReproC(c: ReproCase, o: ReproOptions = REPRO_DEFAULTS): string {
  const pin = PIN_FRAGMENTS[c.pinMethod.path] as PinFragment;
  const writesBuffer = c.pinMethod.kernelWritesPages;
  const op = (OP_FRAGMENTS[c.layoutOp.kind] as (op: LayoutOp) => string)(c.layoutOp);
  const filePages = c.mapping.pageSize === 'pmd' ? PMD_FILE_PAGES : PTE_FILE_PAGES;
  const peerFile = c.layoutOp.pinnedFileIs !== undefined;
  return `// daxpin reproducer: ${c.config.name}/${c.pinMethod.name}.${c.layoutOp.name}.${c.mapping.name}
//   config:  ${c.config.summary}
//   pin:     ${c.pinMethod.summary}
//   op:      ${c.layoutOp.summary}
//   mapping: ${c.mapping.name} (${mmapFlags(c.mapping)}${c.mapping.mappedDuringOp ? '' : ', unmapped before the op: only the pin holds the pages'})
// Generated by \`daxpin repro\` from the case's rows. Usage: ./repro DIR${pin.peer ? ' PEERDEV' : ''}
//   DIR      a directory on the filesystem under test (prepared by the setup lines)${pin.peer ? '\n//   PEERDEV  a block device whose I/O takes HOLD_MS (dm-delay): the O_DIRECT pin\'s peer' : ''}
// It prints what it observed: when the op returned against the pin's release, and
// whose bytes each view holds afterwards ("foreign": another file's bytes).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef FS_XFLAG_DAX
#define FS_XFLAG_DAX 0x00008000
#endif

#define PAGE ${PAGE}
#define FILE_PAGES ${filePages}
#define FILE_LEN ((size_t)FILE_PAGES * PAGE)
#define PIN_OFF ((off_t)${PIN_FIRST_PAGE} * PAGE)
#define PIN_LEN ((size_t)${PIN_PAGES} * PAGE)
#define PMD (2UL << 20)
#define HOLD_MS ${o.holdMs}
#define SETTLE_MS ${o.settleMs}
#define CANARY_BYTES ((size_t)${o.canaryKb} * 1024)
#define CANARY_FILE (64 * 1024)
#define MAX_CANARIES 4096

/* Whose bytes: a 32-byte record says which file wrote it. */
#define ID_FILE 1u   /* the pinned file as created */
#define ID_PEER 2u   /* the O_DIRECT peer's bytes (read into the pinned pages) */
#define ID_OPPEER 3u /* the op's second file */
#define ID_WRITTEN 4u /* written into the pinned file through its mapping after the pin */
#define ID_CANARY 100u
struct rec { char magic[8]; uint32_t id, page, nid, npage; char pad[8]; };

static char dir[4096], path[4200], peerpath[4200];
static int fd = -1, peerfd = -1, devfd = -1, pipefd[2], io_is_read = ${writesBuffer ? 1 : 0};
static unsigned char *map, *pinned, *iobuf, *pipe_bytes;
static size_t pipe_len;
static pthread_t io_thread, op_thread;
static volatile int op_done, op_errno, pin_ok = 1, pin_errno, io_done;
static volatile long op_rc, op_tid;
static volatile double t_op_start, t_op_end, t_release, t_io_end;
static ssize_t io_rc;
static int io_errno;
static int ncanary;

static void die(const char *what) { fprintf(stderr, "repro: %s: %s\\n", what, strerror(errno)); exit(2); }
static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static void msleep(int ms) { struct timespec t = { ms / 1000, (ms % 1000) * 1000000L }; nanosleep(&t, NULL); }

static void fill(unsigned char *p, size_t len, uint32_t id, uint32_t first_page) {
  for (size_t off = 0; off + sizeof(struct rec) <= len; off += sizeof(struct rec)) {
    struct rec r = { "DXPREPRO", id, first_page + (uint32_t)(off / PAGE), ~id, ~(first_page + (uint32_t)(off / PAGE)), {0} };
    memcpy(p + off, &r, sizeof r);
  }
}

/* original (own bytes), written (the peer's where expected, or written through the mapping), zero, foreign (any other file's), garbage, mixed */
static const char *classify(const unsigned char *p, size_t len, uint32_t own, int peer_expected) {
  int seen[5] = {0}; /* own, written, zero, foreign, garbage */
  if (len == 0) return "n/a";
  for (size_t off = 0; off + sizeof(struct rec) <= len; off += sizeof(struct rec)) {
    struct rec r; memcpy(&r, p + off, sizeof r);
    static const struct rec zero;
    if (!memcmp(&r, &zero, sizeof r)) seen[2] = 1;
    else if (memcmp(r.magic, "DXPREPRO", 8) || r.nid != ~r.id) seen[4] = 1;
    else if (r.id == own) seen[0] = 1;
    else if ((r.id == ID_PEER && peer_expected) || (r.id == ID_WRITTEN && own == ID_FILE)) seen[1] = 1;
    else seen[3] = 1;
  }
  if (seen[3]) return "foreign";
  static const char *names[] = { "original", "written", "zero", "foreign", "garbage" };
  int kinds = 0, last = 0;
  for (int i = 0; i < 5; i++) if (seen[i]) { kinds++; last = i; }
  return kinds == 1 ? names[last] : "mixed";
}

static sigjmp_buf on_sigbus;
static void sigbus_handler(int sig) { (void)sig; siglongjmp(on_sigbus, 1); }
/* Copies len bytes from a mapping; 0 when touching it raised SIGBUS. */
static int copy_from_mapping(unsigned char *dst, const unsigned char *src, size_t len) {
  if (sigsetjmp(on_sigbus, 1)) return 0;
  for (size_t i = 0; i < len; i++) dst[i] = ((volatile const unsigned char *)src)[i];
  return 1;
}

static size_t read_full(int from, unsigned char *buf, size_t len) {
  size_t got = 0;
  while (got < len) { ssize_t n = read(from, buf + got, len - got); if (n <= 0) break; got += (size_t)n; }
  return got;
}

static void *peer_io(void *arg) {
  (void)arg;
  io_rc = io_is_read ? pread(devfd, pinned, PIN_LEN, 0) : pwrite(devfd, pinned, PIN_LEN, 0);
  io_errno = errno;
  t_io_end = now_ms();
  io_done = 1;
  return NULL;
}

__attribute__((unused)) static int clone_range(int dst, int src) {
  struct file_clone_range r = { .src_fd = src, .src_offset = (uint64_t)PIN_OFF, .src_length = PIN_LEN, .dest_offset = (uint64_t)PIN_OFF };
  return ioctl(dst, FICLONERANGE, &r);
}
__attribute__((unused)) static int copy_range(int dst, int src) {
  loff_t in = PIN_OFF, out = PIN_OFF;
  return copy_file_range(src, &in, dst, &out, PIN_LEN, 0) == (ssize_t)PIN_LEN ? 0 : -1;
}
__attribute__((unused)) static int unlink_and_close(void) {
  if (unlink(path) != 0) return -1;
  int rc = close(fd);
  fd = -1;
  return rc;
}
__attribute__((unused)) static int flip_dax_flag(int f) {
  struct fsxattr x;
  if (ioctl(f, FS_IOC_FSGETXATTR, &x) != 0) return -1;
  x.fsx_xflags ^= FS_XFLAG_DAX;
  return ioctl(f, FS_IOC_FSSETXATTR, &x);
}

static void *run_op(void *arg) {
  (void)arg;
  op_tid = syscall(SYS_gettid);
  t_op_start = now_ms();
  op_rc = ${op};
  op_errno = errno;
  t_op_end = now_ms();
  op_done = 1;
  return NULL;
}

static int create_file(const char *p, uint32_t id, size_t len) {
  int f = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (f < 0) die(p);
  unsigned char *buf = malloc(len);
  fill(buf, len, id, 0);
  if (pwrite(f, buf, len, 0) != (ssize_t)len) die("write");
  free(buf);
  if (fsync(f) != 0) die("fsync");
  return f;
}

/* Free space filled with marked files, so a block freed while pinned is reused by one of them. */
static void write_canaries(void) {
  unsigned char *buf = malloc(CANARY_FILE);
  for (size_t done = 0; done < CANARY_BYTES && ncanary < MAX_CANARIES; done += CANARY_FILE, ncanary++) {
    char p[4300];
    snprintf(p, sizeof p, "%s/canary.%d", dir, ncanary);
    int f = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0) break;
    fill(buf, CANARY_FILE, ID_CANARY + ncanary, 0);
    ssize_t n = pwrite(f, buf, CANARY_FILE, 0);
    fsync(f);
    close(f);
    if (n != CANARY_FILE) break;
  }
  free(buf);
}

/* The worst class over every canary: foreign if any holds another file's bytes. */
static const char *canary_view(void) {
  if (ncanary == 0) return "n/a";
  unsigned char *buf = malloc(CANARY_FILE);
  const char *worst = "original";
  for (int i = 0; i < ncanary; i++) {
    char p[4300];
    snprintf(p, sizeof p, "%s/canary.%d", dir, i);
    int f = open(p, O_RDONLY);
    if (f < 0) continue;
    ssize_t n = pread(f, buf, CANARY_FILE, 0);
    close(f);
    const char *c = classify(buf, n > 0 ? (size_t)n : 0, ID_CANARY + i, 0);
    if (!strcmp(c, "foreign")) worst = c;
    else if (strcmp(c, "original") && strcmp(worst, "foreign")) worst = c;
    unlink(p);
  }
  free(buf);
  return worst;
}

__attribute__((unused)) static char task_state(long tid) {
  char p[64], buf[512];
  snprintf(p, sizeof p, "/proc/self/task/%ld/stat", tid);
  int f = open(p, O_RDONLY);
  if (f < 0) return '?';
  ssize_t n = read(f, buf, sizeof buf - 1);
  close(f);
  if (n <= 0) return '?';
  buf[n] = 0;
  char *s = strrchr(buf, ')');
  return s && s[1] && s[2] ? s[2] : '?';
}

int main(int argc, char **argv) {
  if (argc < ${pin.peer ? 3 : 2}) { fprintf(stderr, "usage: %s DIR${pin.peer ? ' PEERDEV' : ''}\\n", argv[0]); return 2; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  snprintf(dir, sizeof dir, "%s", argv[1]);
  snprintf(path, sizeof path, "%s/pinned", dir);
  snprintf(peerpath, sizeof peerpath, "%s/peer", dir);
  signal(SIGBUS, sigbus_handler);
  fd = create_file(path, ID_FILE, FILE_LEN);
  ${peerFile ? `peerfd = create_file(peerpath, ${c.layoutOp.pinnedFileIs === 'source' ? 'ID_OPPEER' : 'ID_OPPEER'}, FILE_LEN);${c.layoutOp.pinnedFileIs === 'source' ? '\n  if (ftruncate(peerfd, 0) != 0) die("ftruncate peer"); /* the clone target starts empty */' : ''}` : '/* this op has no second file */'}
  ${pin.peer ? `devfd = open(argv[2], O_RDWR | O_DIRECT);
  if (devfd < 0) die(argv[2]);
  /* the peer's bytes: what the pin's I/O reads into (or its write replaces) */
  if (posix_memalign((void **)&iobuf, PAGE, PIN_LEN)) die("posix_memalign");
  fill(iobuf, PIN_LEN, ID_PEER, 0);
  if (pwrite(devfd, iobuf, PIN_LEN, 0) != (ssize_t)PIN_LEN) die("write peer device");` : '/* no I/O peer: the pin needs none */'}
  pipe_bytes = malloc(PIN_LEN);

  /* map (2 MiB-aligned for PMD mappings), fault every page in */
  unsigned char *area = mmap(NULL, FILE_LEN + PMD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) die("mmap reserve");
  unsigned char *at = (unsigned char *)(((uintptr_t)area + PMD - 1) & ~(PMD - 1));
  map = mmap(at, FILE_LEN, PROT_READ | PROT_WRITE, ${mmapFlags(c.mapping)} | MAP_FIXED, fd, 0);
  if (map == MAP_FAILED) { printf("map: %s\\n", strerror(errno)); return 0; }
  for (size_t i = 0; i < FILE_LEN; i += PAGE) (void)((volatile unsigned char *)map)[i];
  pinned = map + PIN_OFF;
  struct stat st;
  fstat(fd, &st);

  /* pin */
  ${pin.take}
  if (!pin_ok) { printf("pin: %s\\n", strerror(pin_errno)); return 0; }
  printf("pin: ${c.pinMethod.name} held\\n");
  ${c.mapping.mappedDuringOp ? '/* the mapping stays while the op runs */' : 'munmap(map, FILE_LEN); /* only the pin holds the pages now */\n  map = NULL;'}

  /* the op, on a thread of its own: it may wait for the pin */
  double t0 = now_ms();
  if (pthread_create(&op_thread, NULL, run_op, NULL) != 0) die("pthread_create");
  while (!op_done && now_ms() - t0 < HOLD_MS) msleep(1);
  int returned_while_pinned = op_done;
  if (returned_while_pinned) {
    syncfs(peerfd >= 0 ? peerfd : devfd >= 0 ? devfd : ${c.layoutOp.kind === 'unlink' ? 'open(dir, O_RDONLY)' : 'fd'});
    write_canaries();
  }
  ${pin.peer ? 'while (!io_done && now_ms() - t0 < HOLD_MS) msleep(1); /* dm-delay ends the hold */' : 'while (now_ms() - t0 < HOLD_MS) msleep(1); /* hold */'}
  t_release = now_ms();
  ${pin.release}
  while (!op_done && now_ms() - t_release < SETTLE_MS) msleep(1);

  printf("op: ${c.layoutOp.name} ");
  if (!op_done) {
    printf("did not return within %d ms after the release (task state %c)\\n", SETTLE_MS, task_state(op_tid));
  } else {
    printf("%s%s after %.0f ms, ", op_rc < 0 ? "failed: " : "ok", op_rc < 0 ? strerror(op_errno) : "", t_op_end - t_op_start);
    printf(returned_while_pinned ? "BEFORE the release (the pin was still held)\\n" : "after the release (+%.0f ms): it waited for the pin\\n", t_op_end - t_release);
  }
  ${pin.peer ? 'printf("pin I/O: %s (%zd)\\n", io_rc < 0 ? strerror(io_errno) : "completed", io_rc);' : ''}

  /* views: whose bytes each holds now */
  unsigned char *view = malloc(PIN_LEN);
  const char *buffer = "n/a", *file = "n/a", *peer = "n/a", *pipe_view = "n/a";
  if (map && copy_from_mapping(view, pinned, PIN_LEN)) buffer = classify(view, PIN_LEN, ID_FILE, ${writesBuffer ? 1 : 0});
  else if (map) buffer = "SIGBUS";
  ${c.pinMethod.path === 'vmsplice' ? 'pipe_view = classify(pipe_bytes, pipe_len, ID_FILE, 0);' : '/* no pipe */'}
  int rfd = open(path, O_RDONLY);
  if (rfd >= 0) { ssize_t n = pread(rfd, view, PIN_LEN, PIN_OFF); file = classify(view, n > 0 ? (size_t)n : 0, ID_FILE, ${writesBuffer ? 1 : 0}); close(rfd); }
  ${peerFile ? `{ ssize_t n = pread(peerfd, view, PIN_LEN, PIN_OFF); peer = classify(view, n > 0 ? (size_t)n : 0, ${c.layoutOp.pinnedFileIs === 'source' ? 'ID_FILE' : 'ID_OPPEER'}, 0); }` : '/* no peer file */'}
  printf("views: buffer=%s pipe=%s file=%s peer=%s canary=%s (%d canary files)\\n", buffer, pipe_view, file, peer, canary_view(), ncanary);
  unlink(peerpath);
  unlink(path);
  (void)st;
  return 0;
}
`;
}

/** Shell lines that prepare the filesystem (and the dm-delay peer) on a device given as $1, build and run the reproducer. */
export function renderReproSetup(c: ReproCase, o: ReproOptions = REPRO_DEFAULTS): string {
  const pin = PIN_FRAGMENTS[c.pinMethod.path] as PinFragment;
  const cfg = c.config;
  const id = `${cfg.name}/${c.pinMethod.name}.${c.layoutOp.name}.${c.mapping.name}`;
  const lines = [
    '#!/bin/sh',
    `# daxpin reproducer setup: ${id}`,
    `# ${cfg.summary}. As root. The device given is FORMATTED${cfg.fsType === 'tmpfs' ? ' (tmpfs: no device needed, give "none")' : ''}.`,
    'set -eu',
    `DEV=\${1:?usage: $0 DEVICE (a scratch pmem or loop device: it is formatted)}`,
    'MNT=${MNT:-/mnt/daxpin-repro}',
    'HERE=$(cd "$(dirname "$0")" && pwd)',
    'mkdir -p "$MNT"',
  ];
  if (cfg.fsType === 'ext4') lines.push('mkfs.ext4 -q -F "$DEV"');
  if (cfg.fsType === 'xfs') lines.push('mkfs.xfs -q -f -m reflink=1 "$DEV"');
  const opts = cfg.dax === 'always' ? (cfg.fsType === 'ext4' ? '-o dax' : '-o dax=always') : cfg.dax === 'inode' ? '-o dax=inode' : '';
  lines.push(cfg.fsType === 'tmpfs' ? 'mount -t tmpfs none "$MNT"' : `mount ${opts ? `${opts} ` : ''}"$DEV" "$MNT"`);
  lines.push('mkdir -p "$MNT/repro"');
  if (cfg.dax === 'inode') lines.push('xfs_io -c "chattr +x" "$MNT/repro"   # FS_XFLAG_DAX, inherited by the files made in it');
  const args = ['"$MNT/repro"'];
  if (pin.peer) {
    lines.push(
      `# the O_DIRECT pin's peer: a dm-delay device; its I/O completes ${o.holdMs} ms late (the hold)`,
      'modprobe dm_delay 2>/dev/null || true',
      'PEERIMG=$(mktemp /tmp/daxpin-repro-peer.XXXXXX)',
      'truncate -s 1M "$PEERIMG"',
      'LOOP=$(losetup -f --show "$PEERIMG")',
      `dmsetup create daxpin-repro-delay --noudevsync --table "0 2048 delay $LOOP 0 ${o.holdMs}"`,
      'dmsetup mknodes daxpin-repro-delay',
    );
    args.push('/dev/mapper/daxpin-repro-delay');
  }
  lines.push('cc -O2 -pthread -o "$HERE/repro" "$HERE/repro.c"', `"$HERE/repro" ${args.join(' ')} || true`);
  if (pin.peer) lines.push('dmsetup remove daxpin-repro-delay', 'losetup -d "$LOOP"', 'rm -f "$PEERIMG"');
  lines.push('umount "$MNT"', '');
  return lines.join('\n');
}
