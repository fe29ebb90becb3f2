// daxpin's independent reference: one case of the matrix, made with plain syscalls,
// printed as raw facts. It shares no code with daxpin (not the addon, not the FUSE
// peer, not the pattern decoder): the tests compare daxpin's case records with what
// this program saw (test/integration/reference-*.test.ts), and the benchmark times
// daxpin against it (bench/overhead.ts). It provokes and decides nothing.
//
// A case, in the order of lib/engine/timeline.ts: create a file whose every 32-byte
// record names its file, generation and page (lib/cases/patterns.ts) -> mmap ->
// touch every page -> pin -> (munmap) -> the layout op on a thread of its own ->
// hold (below) -> (syncfs + canary files, when the op returned while pinned) ->
// release -> settle (signal a stuck op) -> read the views -> clean up.
//
// Holding (daxpin's policy, lib/engine/hold.ts): --hold-mode evidence releases when
// the op returned, or when its thread has been seen asleep in the kernel (state S or D
// while inside the op's syscall) for --dwell-ms without a break, sampled every
// --sample-ms, or when --hold-ms passed; --hold-mode fixed holds --hold-ms.
//
// O_DIRECT pins go to a one-file FUSE filesystem served by a child process of this
// program (FOPEN_DIRECT_IO): the kernel pins the pages, sends the request and waits
// until the child answers, which it does when told to: that is the release. The pins
// it makes: none, odirect-read/-write (pread/pwrite), uring-read/-write (io_uring
// READ/WRITE), aio-read/-write (io_submit, then io_getevents, on one thread),
// uring-fixed, vmsplice. Not the NBD and RDMA pins.
//
// The filesystem ops (freeze, umount, unlink-umount) need the filesystem's mount, as
// daxpin's do (--mount-source/-target/-type/-data: what it was mounted with); without
// it such a case prints {caseId, unsupported}. umount mounts the filesystem again at
// once with those (flags 0), as daxpin does, and makes DIR again on it.
//
// usage: case [options] DIR CASE-ID      one case; one JSON line on stdout
//        case [options] --serve DIR      case ids on stdin, one JSON line each
// options: --hold-ms N (300) --hold-mode evidence|fixed (evidence) --dwell-ms N (25)
//          --sample-ms N (2) --settle-ms N (1000) --signal-wait-ms N (1000)
//          --canary-bytes N (262144) --extent-hint (2 MiB XFS extent size hint for
//          pmd mappings) --fuse-dir DIR (where to mount the FUSE peer; default DIR)
//          --results FILE (append and fsync each line, as daxpin does its JSONL)
//          --mount-source DEV --mount-target DIR --mount-type FS --mount-data OPTS
//
// Output fields (one object per case): caseId, daxVerified, pmd, map, pin {ok, errno,
// held}, op {started, ok, errno, result, dedupe {status, bytesDeduped}, returnedMs,
// seenAsleep (the hold saw its thread asleep in its call), asleepAtRelease, blockedUntilRelease, hung}, release {ok, errno, result}, file {before,
// after} each {size, blocks, extents} (stat; FIEMAP over the pinned range, bytes, without
// FIEMAP_FLAG_SYNC: looking must not write the file back; extents null where FIEMAP is
// refused) and pathAfter {ok, errno} (lstat of the file's path once everything settled:
// ENOENT once unlinked), views.pages {buffer, pipe, file, peer, canary}: one letter per 4 KiB page,
// decoded here from the bytes read back, by role (what the view may hold):
//   o the view's own bytes at their own page    w this case's written bytes at their own page
//   p the op's peer file's bytes copied in       s any of these at another page (moved)
//   z all zero   f another file's bytes   g bytes no one wrote   m a page mixing several   - not read
// (the canary string runs over all canary pages, each relative to its own canary),
// canary {files, bytes}, sigbus [..], wallMs.
// Exit status: 0 done, 2 usage or set-up error, 3 the op is stuck (no clean-up).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/aio_abi.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef FS_XFLAG_DAX
#define FS_XFLAG_DAX 0x00008000
#endif
#ifndef FS_XFLAG_EXTSIZE
#define FS_XFLAG_EXTSIZE 0x00000800
#endif

// The case's geometry: the numbers of lib/cases/matrix.ts.
#define PAGE 4096
#define PMD_SIZE (2 * 1024 * 1024)
#define PTE_FILE_PAGES 64
#define PMD_FILE_PAGES 1024
#define PIN_FIRST_PAGE 16
#define PIN_PAGES 4
#define PIN_OFF (PIN_FIRST_PAGE * PAGE)
#define PIN_LEN (PIN_PAGES * PAGE)
#define RECORD 32
#define CANARY_FILE (256 * 1024)
#define MAX_CANARIES 256
#define STATX_ATTR_DAX_ 0x00200000

static struct {
  long hold_ms, dwell_ms, sample_ms, settle_ms, signal_wait_ms, canary_bytes;
  int fixed_hold, extent_hint;
  const char *dir, *fuse_dir, *results;
  const char *mount_source, *mount_target, *mount_type, *mount_data;
} opt = {300, 25, 2, 1000, 1000, 262144, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_until(double ms) {
  struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static void die(const char *what) {
  fprintf(stderr, "case: %s: %s\n", what, strerror(errno));
  exit(2);
}

// --- the pattern: 32-byte records {magic "DAXPIN\1\0", fileId, gen, page, ~fileId, ~gen, ~page}
static const unsigned char MAGIC[8] = {'D', 'A', 'X', 'P', 'I', 'N', 1, 0};
enum { ORIGINAL = 0, WRITTEN = 1 };

static void fill(unsigned char *b, size_t len, uint32_t id, uint32_t gen, uint32_t first_page) {
  for (size_t off = 0; off + RECORD <= len; off += RECORD) {
    uint32_t page = first_page + off / PAGE;
    uint32_t v[6] = {id, gen, page, ~id, ~gen, ~page};
    memcpy(b + off, MAGIC, 8);
    memcpy(b + off + 8, v, sizeof v);
  }
}

// What a view may hold: tags and the letter each plays ('o', 'w' or 'p').
struct roles {
  int n;
  struct { uint32_t id, gen; char letter; } tag[4];
};
static void role(struct roles *r, uint32_t id, uint32_t gen, char letter) {
  for (int i = 0; i < r->n; i++)
    if (r->tag[i].id == id && r->tag[i].gen == gen) return;  // the first role given wins
  r->tag[r->n].id = id;
  r->tag[r->n].gen = gen;
  r->tag[r->n++].letter = letter;
}

// One page read back at page index `index` of its file: which role its records play.
static char page_role(const unsigned char *p, uint32_t index, const struct roles *r) {
  char role = 0;
  for (size_t off = 0; off < PAGE; off += RECORD) {
    const unsigned char *rec = p + off;
    uint32_t v[6];
    memcpy(v, rec + 8, sizeof v);
    char c;
    int zero = 1;
    for (int i = 0; i < RECORD; i++) zero &= rec[i] == 0;
    if (zero) c = 'z';
    else if (memcmp(rec, MAGIC, 8) != 0 || v[3] != ~v[0] || v[4] != ~v[1] || v[5] != ~v[2]) c = 'g';
    else {
      c = 'f';
      for (int i = 0; i < r->n; i++)
        if (r->tag[i].id == v[0] && r->tag[i].gen == v[1]) c = v[2] == index ? r->tag[i].letter : 's';
    }
    if (role && role != c) return 'm';
    role = c;
  }
  return role;
}

// `got` bytes read from page `first_index` on; pages not wholly read are '-'.
static void page_string(char *out, const unsigned char *b, size_t got, size_t pages, uint32_t first_index, const struct roles *r) {
  for (size_t i = 0; i < pages; i++) out[i] = (i + 1) * PAGE <= got ? page_role(b + i * PAGE, first_index + i, r) : '-';
  out[pages] = 0;
}

// --- a JSON line
static char *js;
static size_t js_len, js_cap;
static void jf(const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(js + js_len, js_cap - js_len, fmt, ap);
    va_end(ap);
    if ((size_t)n < js_cap - js_len) {
      js_len += n;
      return;
    }
    js_cap = js_cap * 2 + n + 256;
    js = realloc(js, js_cap);
  }
}
static void jerrno(int err) {
  const char *name = err ? strerrorname_np(err) : NULL;
  if (!err) jf("null");
  else if (name) jf("\"%s\"", name);
  else jf("\"E%d\"", err);
}
// {ok, errno} of a syscall outcome: err < 0 means "did not happen" (ok false, errno null).
static void jresult(int err) {
  jf("\"ok\":%s,\"errno\":", err == 0 ? "true" : "false");
  jerrno(err < 0 ? 0 : err);
}

// --- SIGBUS-guarded access to the mapping
static __thread sigjmp_buf *volatile bus_jump;
static void on_sigbus(int sig) {
  (void)sig;
  if (bus_jump) siglongjmp(*bus_jump, 1);
  abort();
}
static int guarded_copy(void *dst, const void *src, size_t n) {
  sigjmp_buf j;
  if (sigsetjmp(j, 1)) { bus_jump = NULL; return 0; }
  bus_jump = &j;
  __asm__ volatile("" ::: "memory");
  memcpy(dst, src, n);
  __asm__ volatile("" ::: "memory");
  bus_jump = NULL;
  return 1;
}
static int guarded_touch(const char *p, size_t n) {
  sigjmp_buf j;
  if (sigsetjmp(j, 1)) { bus_jump = NULL; return 0; }
  bus_jump = &j;
  for (size_t i = 0; i < n; i += PAGE) (void)*(const volatile char *)(p + i);
  bus_jump = NULL;
  return 1;
}
static void on_interrupt(int sig) { (void)sig; }

// --- kernel log and taint: what daxpin's orchestrator reads around every case
static int kmsg_fd = -1;
static void kmsg_drain(void) {
  char buf[8192];
  if (kmsg_fd < 0) return;
  while (read(kmsg_fd, buf, sizeof buf) > 0 || errno == EPIPE || errno == EINTR) {}
}
static void read_tainted(void) {
  char buf[32];
  int fd = open("/proc/sys/kernel/tainted", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (read(fd, buf, sizeof buf) < 0) buf[0] = 0;
  close(fd);
}

// --- PMD: PAGEMAP_SCAN for PAGE_IS_HUGE (Linux 6.7+), else smaps; not observed for DAX
struct pm_scan_arg_ {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region_ { uint64_t start, end, categories; };
#define PAGEMAP_SCAN_ _IOWR('f', 16, struct pm_scan_arg_)
static int pmd_observed(void *addr, size_t len) {
  static int pagemap = -2;
  if (pagemap == -2) pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap >= 0) {
    struct page_region_ r[64];
    struct pm_scan_arg_ a = {.size = sizeof a, .start = (uintptr_t)addr, .end = (uintptr_t)addr + len,
                             .vec = (uintptr_t)r, .vec_len = 64, .category_mask = 1 << 6, .return_mask = 1 << 6};
    long n = ioctl(pagemap, PAGEMAP_SCAN_, &a);
    if (n >= 0) return n > 0;
    close(pagemap);
    pagemap = -1;
  }
  static char buf[1 << 20];
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  ssize_t n;
  while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += n;
  close(fd);
  buf[got] = 0;
  char start[32];
  snprintf(start, sizeof start, "\n%lx-", (unsigned long)addr);
  char *vma = strstr(buf, start);
  if (!vma) return -1;
  char *end = strstr(vma + 1, "VmFlags:");
  long kb = 0;
  for (const char *key = "FilePmdMapped:"; key; key = strcmp(key, "FilePmdMapped:") ? NULL : "ShmemPmdMapped:") {
    char *at = strstr(vma, key);
    if (at && (!end || at < end)) kb += atol(at + strlen(key));
  }
  return kb > 0;
}

// --- a syscall (or a few) on a thread of its own: the op, and O_DIRECT pin I/O
struct call {
  int (*fn)(struct call *);
  void *arg;
  pid_t tid;
  volatile int in_kernel;  // between entering and leaving the syscall: the hold samples only then
  long ret;
  int err;
  long aux;
  double returned_at;  // when the call's last syscall returned, if it did more after (0: done_at)
  double done_at;
  int done;
  int efd;  // written when done (poll on it)
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};
static void *call_thread(void *arg) {
  struct call *c = arg;
  c->tid = gettid();
  int err = c->fn(c);
  pthread_mutex_lock(&c->mu);
  c->err = err;
  c->done_at = c->returned_at ? c->returned_at : now_ms();
  c->done = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  uint64_t one = 1;
  if (write(c->efd, &one, sizeof one) < 0) {}
  return NULL;
}
static void call_start(struct call *c, int (*fn)(struct call *), void *arg) {
  memset(c, 0, sizeof *c);
  c->fn = fn;
  c->arg = arg;
  c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_lock(&c->mu);
  if (pthread_create(&c->th, NULL, call_thread, c) != 0) die("pthread_create");
  pthread_mutex_unlock(&c->mu);
  while (!__atomic_load_n(&c->tid, __ATOMIC_ACQUIRE)) sched_yield();
}
// Waits until the call is done or `until` (CLOCK_MONOTONIC ms) passes; returns done.
static int call_wait(struct call *c, double until) {
  pthread_mutex_lock(&c->mu);
  while (!c->done) {
    struct timespec ts = {(time_t)(until / 1e3), (long)((until - (time_t)(until / 1e3) * 1e3) * 1e6)};
    if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
  }
  int done = c->done;
  pthread_mutex_unlock(&c->mu);
  return done;
}
static void call_end(struct call *c) {
  pthread_join(c->th, NULL);
  close(c->efd);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}
static char task_state(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return '?';
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return '?';
  buf[n] = 0;
  char *paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' ? paren[2] : '?';
}
#define SYSCALL(c, expr) ((c)->in_kernel = 1, __extension__({ long r_ = (long)(expr); (c)->in_kernel = 0; r_; }))

// --- the FUSE peer: a child process serving one file opened FOPEN_DIRECT_IO. Messages
// on a seqpacket socket: to it 'R'+fileId (answer all held requests, READs with this
// case's written bytes at the page of their offset; it replies 'r'+count), 'Q'; from it
// 'I' (INIT answered), 'H' (a READ/WRITE is held). As daxpin does, the file is opened
// once (O_RDWR | O_DIRECT) for the peer's lifetime: the peer keeps no state per open.
#define FUSE_READ_ 15
#define FUSE_WRITE_ 16
#define FUSE_MAX_WRITE (128 * 1024)
static struct { pid_t pid; int sock, fd; char mnt[4096], file[4200]; } peer = {0, -1, -1, "", ""};

static void fuse_reply(int fd, uint64_t unique, int error, const void *body, size_t len) {
  unsigned char out[16 + FUSE_MAX_WRITE];
  uint32_t total = 16 + len;
  memcpy(out, &total, 4);
  memcpy(out + 4, &error, 4);
  memcpy(out + 8, &unique, 8);
  if (len) memcpy(out + 16, body, len);
  if (write(fd, out, total) < 0 && errno != ENOENT) _exit(4);
}
static void fuse_attr(unsigned char *a, uint64_t ino) {
  int root = ino == 1;
  uint64_t size = root ? 0 : 1ull << 30, blocks = size / 512;
  uint32_t mode = root ? 040755 : 0100666, nlink = root ? 2 : 1, blksize = 4096;
  memcpy(a, &ino, 8);
  memcpy(a + 8, &size, 8);
  memcpy(a + 16, &blocks, 8);
  memcpy(a + 60, &mode, 4);
  memcpy(a + 64, &nlink, 4);
  memcpy(a + 80, &blksize, 4);
}
struct held { uint64_t unique; uint32_t opcode, size; uint64_t offset; };
static void fuse_serve(int fd, int sock) {
  static unsigned char req[FUSE_MAX_WRITE + 64 * 1024], data[FUSE_MAX_WRITE];
  struct held held[64];
  int nheld = 0;
  uint32_t armed = 0;
  for (;;) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {sock, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(4);
    }
    if (p[1].revents) {
      char m[8];
      ssize_t n = recv(sock, m, sizeof m, 0);
      if (n <= 0 || m[0] == 'Q') break;
      if (m[0] == 'R') {
        memcpy(&armed, m + 1, 4);
        for (int i = 0; i < nheld; i++) {
          if (held[i].opcode == FUSE_READ_) {
            fill(data, held[i].size, armed, WRITTEN, held[i].offset / PAGE);
            fuse_reply(fd, held[i].unique, 0, data, held[i].size);
          } else {
            uint32_t w[2] = {held[i].size, 0};
            fuse_reply(fd, held[i].unique, 0, w, sizeof w);
          }
        }
        char r[5] = {'r'};
        memcpy(r + 1, &nheld, 4);
        nheld = 0;
        if (send(sock, r, sizeof r, 0) < 0) break;
      }
    }
    if (!p[0].revents) continue;
    ssize_t n = read(fd, req, sizeof req);
    if (n < 0) {
      if (errno == ENOENT || errno == EINTR || errno == EAGAIN) continue;
      break;  // ENODEV: unmounted
    }
    uint32_t opcode;
    uint64_t unique, nodeid;
    memcpy(&opcode, req + 4, 4);
    memcpy(&unique, req + 8, 8);
    memcpy(&nodeid, req + 16, 8);
    unsigned char *body = req + 40, out[256];
    memset(out, 0, sizeof out);
    switch (opcode) {
      case 26: {  // INIT
        uint32_t major, flags, v;
        memcpy(&major, body, 4);
        memcpy(&flags, body + 12, 4);
        memcpy(out, &major, 4);
        v = 31;
        memcpy(out + 4, &v, 4);
        v = flags & ((1u << 5) | (1u << 22));  // BIG_WRITES, MAX_PAGES
        memcpy(out + 12, &v, 4);
        uint16_t bg = 16, cong = 12, pages = FUSE_MAX_WRITE / PAGE;
        memcpy(out + 16, &bg, 2);
        memcpy(out + 18, &cong, 2);
        v = FUSE_MAX_WRITE;
        memcpy(out + 20, &v, 4);
        v = 1;
        memcpy(out + 24, &v, 4);
        memcpy(out + 28, &pages, 2);
        fuse_reply(fd, unique, 0, out, 64);
        if (send(sock, "I", 1, 0) < 0) _exit(4);
        break;
      }
      case 1: {  // LOOKUP
        if (nodeid != 1 || strcmp((char *)body, "peer") != 0) {
          fuse_reply(fd, unique, -ENOENT, NULL, 0);
          break;
        }
        uint64_t ino = 2, valid = 3600;
        memcpy(out, &ino, 8);
        memcpy(out + 16, &valid, 8);
        memcpy(out + 24, &valid, 8);
        fuse_attr(out + 40, 2);
        fuse_reply(fd, unique, 0, out, 40 + 88);
        break;
      }
      case 3: {  // GETATTR
        uint64_t valid = 3600;
        memcpy(out, &valid, 8);
        fuse_attr(out + 16, nodeid);
        fuse_reply(fd, unique, 0, out, 16 + 88);
        break;
      }
      case 14: {  // OPEN: FOPEN_DIRECT_IO
        uint64_t fh = 1;
        uint32_t flags = 1;
        memcpy(out, &fh, 8);
        memcpy(out + 8, &flags, 4);
        fuse_reply(fd, unique, 0, out, 16);
        break;
      }
      case FUSE_READ_:
      case FUSE_WRITE_:
        if (nheld < 64) {
          held[nheld].unique = unique;
          held[nheld].opcode = opcode;
          memcpy(&held[nheld].offset, body + 8, 8);
          memcpy(&held[nheld].size, body + 16, 4);
          nheld++;
        }
        if (send(sock, "H", 1, 0) < 0) _exit(4);
        break;
      case 17: {  // STATFS
        uint32_t bsize = 4096, namelen = 255;
        memcpy(out + 40, &bsize, 4);
        memcpy(out + 44, &namelen, 4);
        memcpy(out + 48, &bsize, 4);
        fuse_reply(fd, unique, 0, out, 80);
        break;
      }
      case 18: case 25: case 38:  // RELEASE, FLUSH, DESTROY
        fuse_reply(fd, unique, 0, NULL, 0);
        break;
      case 2: case 36: case 42:  // FORGET, INTERRUPT, BATCH_FORGET: no reply; a held request stays held
        break;
      default:
        fuse_reply(fd, unique, -ENOSYS, NULL, 0);
    }
  }
  _exit(0);
}
// The mount goes with the peer, however this program ends (the peer gets SIGTERM when
// its parent dies): nothing is left mounted for someone else to clean up.
static void peer_gone(int sig) {
  (void)sig;
  umount2(peer.mnt, MNT_DETACH);
  rmdir(peer.mnt);
  _exit(0);
}
static void on_terminate(int sig) {
  if (peer.pid > 0) kill(peer.pid, SIGTERM);
  _exit(128 + sig);
}
static int peer_send(const char *m, size_t len) { return send(peer.sock, m, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1; }
static void peer_start(void) {
  snprintf(peer.mnt, sizeof peer.mnt, "%s/case-fuse-%d", opt.fuse_dir, getpid());
  snprintf(peer.file, sizeof peer.file, "%s/peer", peer.mnt);
  if (mkdir(peer.mnt, 0755) != 0 && errno != EEXIST) die("mkdir fuse mount point");
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("open /dev/fuse");
  char data[128];
  snprintf(data, sizeof data, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd);
  if (mount("daxpin-reference", peer.mnt, "fuse", MS_NOSUID | MS_NODEV, data) != 0) die("mount fuse");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  peer.pid = fork();
  if (peer.pid < 0) die("fork");
  if (peer.pid == 0) {
    close(sv[0]);
    signal(SIGTERM, peer_gone);
    signal(SIGINT, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) peer_gone(0);
    fuse_serve(fd, sv[1]);
  }
  close(fd);  // the child's copy is the connection: when the child dies, it is aborted
  close(sv[1]);
  peer.sock = sv[0];
  char m;
  if (recv(peer.sock, &m, 1, 0) != 1 || m != 'I') die("FUSE peer did not start");
  peer.fd = open(peer.file, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (peer.fd < 0) die("open FUSE file");
}
static void peer_stop(void) {
  if (peer.pid <= 0) return;
  if (peer.fd >= 0) close(peer.fd);
  peer.fd = -1;
  umount2(peer.mnt, MNT_DETACH);
  peer_send("Q", 1);
  waitpid(peer.pid, NULL, 0);
  rmdir(peer.mnt);
  peer.pid = 0;
}
static int peer_release(uint32_t file_id) {
  char m[5] = {'R'};
  memcpy(m + 1, &file_id, 4);
  return peer_send(m, sizeof m);
}
static void peer_drain_held(void) {
  char m[8];
  while (recv(peer.sock, m, sizeof m, MSG_DONTWAIT) > 0) {}
}

// --- io_uring: one ring, one submission at a time
struct ring {
  int fd;
  char *sq, *cq;
  struct io_uring_sqe *sqes;
  size_t sq_len, cq_len, sqes_len;
  struct io_uring_params p;
};
static int ring_open(struct ring *r) {
  memset(r, 0, sizeof *r);
  r->fd = syscall(__NR_io_uring_setup, 4, &r->p);
  if (r->fd < 0) return errno;
  r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned);
  r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
  int single = r->p.features & IORING_FEAT_SINGLE_MMAP;
  if (single) r->sq_len = r->cq_len = r->sq_len > r->cq_len ? r->sq_len : r->cq_len;
  r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  r->cq = single ? r->sq : mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
  r->sqes_len = r->p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED) die("mmap io_uring");
  return 0;
}
static void ring_close(struct ring *r) {
  if (r->fd <= 0) return;
  munmap(r->sqes, r->sqes_len);
  if (r->cq != r->sq) munmap(r->cq, r->cq_len);
  munmap(r->sq, r->sq_len);
  close(r->fd);
  r->fd = -1;
}

// --- the case
enum pin { PIN_NONE, PIN_FUSE_READ, PIN_FUSE_WRITE, PIN_URING_READ, PIN_URING_WRITE, PIN_AIO_READ, PIN_AIO_WRITE, PIN_URING_FIXED, PIN_VMSPLICE };
enum op { OP_TRUNCATE_SHRINK, OP_TRUNCATE_ZERO, OP_PUNCH_HOLE, OP_ZERO_RANGE, OP_COLLAPSE_RANGE, OP_INSERT_RANGE,
          OP_FICLONE_DEST, OP_FICLONE_SRC, OP_FICLONERANGE, OP_DEDUPE, OP_COPY_RANGE, OP_UNLINK, OP_DAX_FLAG,
          OP_FREEZE, OP_UMOUNT, OP_UNLINK_UMOUNT };
static const char *PINS[] = {"none", "odirect-read", "odirect-write", "uring-read", "uring-write", "aio-read", "aio-write", "uring-fixed", "vmsplice"};
static const char *OPS[] = {"truncate-shrink", "truncate-zero", "punch-hole", "zero-range", "collapse-range", "insert-range",
                            "ficlone-dest", "ficlone-src", "ficlonerange", "dedupe", "copy-range", "unlink", "dax-flag",
                            "freeze", "umount", "unlink-umount"};
static const char *MAPPINGS[] = {"pte-shared", "pte-shared-unmapped", "pte-private", "pte-sync", "pmd-shared", "pmd-shared-unmapped", "pmd-sync"};

struct spec {
  enum pin pin;
  enum op op;
  int pmd, unmapped, flags;  // flags: mmap sharing flags
};

static int lookup(const char *name, const char **table, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(name, table[i])) return i;
  return -1;
}
static int parse(const char *id, struct spec *s) {
  char pin[64], op[64], map[64];
  if (sscanf(id, "%63[^.].%63[^.].%63s", pin, op, map) != 3) return -1;
#define N(a) ((int)(sizeof a / sizeof a[0]))
  int p = lookup(pin, PINS, N(PINS)), o = lookup(op, OPS, N(OPS)), m = lookup(map, MAPPINGS, N(MAPPINGS));
  if (p < 0 || o < 0 || m < 0) return -1;
  s->pin = p;
  s->op = o;
  s->pmd = strncmp(map, "pmd", 3) == 0;
  s->unmapped = strstr(map, "unmapped") != NULL;
  s->flags = strstr(map, "sync") ? MAP_SHARED_VALIDATE | MAP_SYNC : strstr(map, "private") ? MAP_PRIVATE : MAP_SHARED;
  return 0;
}

struct files {
  char path[4096], peer_path[4096 + 8];
  int fd, peer_fd;
  int freeze_fd;  // the directory a freeze op froze the filesystem through (thawed again at clean-up)
};

// mkdir -p: DIR again on the filesystem mounted again after an umount op.
static void make_dirs(const char *dir) {
  char p[4096];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) fprintf(stderr, "case: mkdir %s: %s\n", p, strerror(errno));
      *s = c;
      if (!c) break;
    }
  }
}

// After an umount op that unmounted: mount the filesystem again, as it was mounted.
static void mount_again(void) {
  if (mount(opt.mount_source, opt.mount_target, opt.mount_type, 0, opt.mount_data) != 0) {
    fprintf(stderr, "case: mount again after umount: %s\n", strerror(errno));
    return;
  }
  make_dirs(opt.dir);
}
struct op_arg {
  enum op op;
  struct files *f;
};
static int run_op(struct call *c) {
  struct op_arg *a = c->arg;
  struct files *f = a->f;
  long r = 0;
  switch (a->op) {
    case OP_TRUNCATE_SHRINK: r = SYSCALL(c, ftruncate(f->fd, PIN_OFF)); break;
    case OP_TRUNCATE_ZERO: r = SYSCALL(c, ftruncate(f->fd, 0)); break;
    case OP_PUNCH_HOLE: r = SYSCALL(c, fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_OFF, PIN_LEN)); break;
    case OP_ZERO_RANGE: r = SYSCALL(c, fallocate(f->fd, FALLOC_FL_ZERO_RANGE, PIN_OFF, PIN_LEN)); break;
    case OP_COLLAPSE_RANGE: r = SYSCALL(c, fallocate(f->fd, FALLOC_FL_COLLAPSE_RANGE, PIN_OFF, PIN_LEN)); break;
    case OP_INSERT_RANGE: r = SYSCALL(c, fallocate(f->fd, FALLOC_FL_INSERT_RANGE, PIN_OFF, PIN_LEN)); break;
    case OP_FICLONE_DEST: r = SYSCALL(c, ioctl(f->fd, FICLONE, f->peer_fd)); break;
    case OP_FICLONE_SRC: r = SYSCALL(c, ioctl(f->peer_fd, FICLONE, f->fd)); break;
    case OP_FICLONERANGE: {
      struct file_clone_range cr = {f->peer_fd, PIN_OFF, PIN_LEN, PIN_OFF};
      r = SYSCALL(c, ioctl(f->fd, FICLONERANGE, &cr));
      break;
    }
    case OP_DEDUPE: {
      struct { struct file_dedupe_range r; struct file_dedupe_range_info i; } d;
      memset(&d, 0, sizeof d);
      d.r.src_offset = PIN_OFF;
      d.r.src_length = PIN_LEN;
      d.r.dest_count = 1;
      d.i.dest_fd = f->fd;
      d.i.dest_offset = PIN_OFF;
      r = SYSCALL(c, ioctl(f->peer_fd, FIDEDUPERANGE, &d));
      if (r == 0) {
        c->aux = d.i.status;
        c->ret = (long)d.i.bytes_deduped;
        return d.i.status < 0 ? -d.i.status : 0;
      }
      break;
    }
    case OP_COPY_RANGE: {
      loff_t in = PIN_OFF, out = PIN_OFF;
      r = SYSCALL(c, copy_file_range(f->peer_fd, &in, f->fd, &out, PIN_LEN, 0));
      break;
    }
    case OP_UNLINK:
      r = SYSCALL(c, unlink(f->path));
      if (r == 0) {
        int fd = f->fd;
        f->fd = -1;
        r = SYSCALL(c, close(fd));
      }
      break;
    case OP_FREEZE: {
      // The thaw is part of the op: canaries and views come after it, never into a frozen fs.
      int arg = 0;
      f->freeze_fd = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (f->freeze_fd < 0) return errno;
      r = SYSCALL(c, ioctl(f->freeze_fd, FIFREEZE, &arg));
      if (r == 0) r = SYSCALL(c, ioctl(f->freeze_fd, FITHAW, &arg));
      break;
    }
    case OP_UMOUNT:
    case OP_UNLINK_UMOUNT: {
      // Only the pin (and, when still mapped, the mapping: EBUSY) keeps the inode alive.
      r = a->op == OP_UNLINK_UMOUNT ? SYSCALL(c, unlink(f->path)) : 0;
      if (r == 0) {
        int fd = f->fd;
        f->fd = -1;
        r = SYSCALL(c, close(fd));
      }
      if (r == 0) {
        r = SYSCALL(c, umount2(opt.mount_target, 0));
        int err = errno;
        if (r == 0) {
          c->returned_at = now_ms();
          mount_again();
        }
        errno = err;
      }
      break;
    }
    case OP_DAX_FLAG: {
      struct fsxattr fa;
      memset(&fa, 0, sizeof fa);
      r = SYSCALL(c, ioctl(f->fd, FS_IOC_FSGETXATTR, &fa));
      if (r == 0) {
        fa.fsx_xflags ^= FS_XFLAG_DAX;
        r = SYSCALL(c, ioctl(f->fd, FS_IOC_FSSETXATTR, &fa));
      }
      break;
    }
  }
  if (r < 0) return errno;
  c->ret = r;
  return 0;
}

struct pin_io {
  enum pin pin;
  int fd;
  char *buf;
  struct ring *ring;
  aio_context_t aio;
};
static int run_pin_io(struct call *c) {
  struct pin_io *p = c->arg;
  long r;
  switch (p->pin) {
    case PIN_FUSE_READ: r = SYSCALL(c, pread(p->fd, p->buf, PIN_LEN, PIN_OFF)); break;
    case PIN_FUSE_WRITE: r = SYSCALL(c, pwrite(p->fd, p->buf, PIN_LEN, PIN_OFF)); break;
    case PIN_AIO_READ:
    case PIN_AIO_WRITE: {
      // Where the file has no async direct I/O (FUSE without FUSE_ASYNC_DIO), io_submit
      // itself waits for the answer; io_getevents then collects it.
      struct iocb cb;
      memset(&cb, 0, sizeof cb);
      cb.aio_lio_opcode = p->pin == PIN_AIO_READ ? IOCB_CMD_PREAD : IOCB_CMD_PWRITE;
      cb.aio_fildes = p->fd;
      cb.aio_buf = (uintptr_t)p->buf;
      cb.aio_nbytes = PIN_LEN;
      cb.aio_offset = PIN_OFF;
      struct iocb *cbs[1] = {&cb};
      r = SYSCALL(c, syscall(__NR_io_submit, p->aio, 1, cbs));
      if (r < 0) return errno;
      if (r == 0) return EAGAIN;
      struct io_event ev;
      do r = SYSCALL(c, syscall(__NR_io_getevents, p->aio, 1, 1, &ev, NULL));
      while (r < 0 && errno == EINTR);
      if (r < 0) return errno;
      if (ev.res < 0) return (int)-ev.res;
      c->ret = (long)ev.res;
      return 0;
    }
    default: {
      struct ring *g = p->ring;
      unsigned *tail = (unsigned *)(g->sq + g->p.sq_off.tail), mask = *(unsigned *)(g->sq + g->p.sq_off.ring_mask);
      unsigned *array = (unsigned *)(g->sq + g->p.sq_off.array), t = *tail, i = t & mask;
      struct io_uring_sqe *sqe = &g->sqes[i];
      memset(sqe, 0, sizeof *sqe);
      sqe->opcode = p->pin == PIN_URING_READ ? IORING_OP_READ : IORING_OP_WRITE;
      sqe->fd = p->fd;
      sqe->addr = (uintptr_t)p->buf;
      sqe->len = PIN_LEN;
      sqe->off = PIN_OFF;
      array[i] = i;
      __atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
      do r = SYSCALL(c, syscall(__NR_io_uring_enter, g->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0));
      while (r < 0 && errno == EINTR);
      if (r < 0) return errno;
      unsigned *head = (unsigned *)(g->cq + g->p.cq_off.head), *ctail = (unsigned *)(g->cq + g->p.cq_off.tail);
      unsigned cmask = *(unsigned *)(g->cq + g->p.cq_off.ring_mask), h = *head;
      while (h == __atomic_load_n(ctail, __ATOMIC_ACQUIRE)) {}
      struct io_uring_cqe *cqe = (struct io_uring_cqe *)(g->cq + g->p.cq_off.cqes) + (h & cmask);
      int res = cqe->res;
      __atomic_store_n(head, h + 1, __ATOMIC_RELEASE);
      if (res < 0) return -res;
      c->ret = res;
      return 0;
    }
  }
  if (r < 0) return errno;
  c->ret = r;
  return 0;
}

static void jfacts(int fd) {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    jf("null");
    return;
  }
  jf("{\"size\":%lld,\"blocks\":%lld,\"extents\":", (long long)st.st_size, (long long)st.st_blocks);
  struct { struct fiemap m; struct fiemap_extent e[64]; } fm;
  memset(&fm, 0, sizeof fm);
  fm.m.fm_start = PIN_OFF;
  fm.m.fm_length = PIN_LEN;
  fm.m.fm_extent_count = 64;
  if (ioctl(fd, FS_IOC_FIEMAP, &fm) != 0) {
    jf("null}");
    return;
  }
  jf("[");
  for (unsigned i = 0; i < fm.m.fm_mapped_extents; i++)
    jf("%s{\"logical\":%llu,\"physical\":%llu,\"length\":%llu,\"flags\":%u}", i ? "," : "", (unsigned long long)fm.e[i].fe_logical,
       (unsigned long long)fm.e[i].fe_physical, (unsigned long long)fm.e[i].fe_length, fm.e[i].fe_flags);
  jf("]}");
}

// The facts as a string of their own: they are taken where daxpin takes them, and printed later.
static char *facts(int fd) {
  size_t mark = js_len;
  jfacts(fd);
  char *out = strndup(js + mark, js_len - mark);
  js_len = mark;
  return out;
}

static size_t pread_all(int fd, unsigned char *b, size_t len, off_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, b + got, len - got, off + got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

// The hold: until the op returns, it has slept in the kernel for dwell_ms (evidence
// mode), or hold_ms passed. Returns whether the op had returned. seen_asleep: a sample
// found the op's thread asleep in its call (daxpin's op.wait is not null then).
static int seen_asleep;
static int hold(struct call *op, double op_start) {
  double deadline = op_start + opt.hold_ms;
  seen_asleep = 0;
  if (opt.fixed_hold) {
    sleep_until(deadline);
    return call_wait(op, now_ms());
  }
  double asleep_since = -1;
  for (;;) {
    double t = now_ms();
    if (t >= deadline) return call_wait(op, t);
    double next = t + opt.sample_ms < deadline ? t + opt.sample_ms : deadline;
    if (call_wait(op, next)) return 1;
    char s = op->in_kernel ? task_state(op->tid) : 'R';
    if ((s == 'S' || s == 'D') && op->in_kernel) {
      seen_asleep = 1;
      if (asleep_since < 0) asleep_since = now_ms();
      else if (now_ms() - asleep_since >= opt.dwell_ms) return 0;
    } else {
      asleep_since = -1;
    }
  }
}

static unsigned seq;

// One case; appends its JSON object to js. Returns 3 when the op is stuck.
static int run_case(const char *id, const struct spec *s) {
  double t0 = now_ms();
  struct files f = {.fd = -1, .peer_fd = -1, .freeze_fd = -1};
  size_t pages = s->pmd ? PMD_FILE_PAGES : PTE_FILE_PAGES, file_len = pages * PAGE;
  uint32_t file_id = (uint32_t)(random() & 0x7ffffffe) + 1;
  uint32_t peer_id = 0;
  char base[3900];
  snprintf(base, sizeof base, "%s/ref-%d-%u", opt.dir, getpid(), ++seq);
  snprintf(f.path, sizeof f.path, "%s.data", base);
  kmsg_drain();
  read_tainted();
  jf("{\"caseId\":\"%s\"", id);
  if ((s->op == OP_FREEZE || s->op == OP_UMOUNT || s->op == OP_UNLINK_UMOUNT) &&
      !(opt.mount_source && opt.mount_target && opt.mount_type && opt.mount_data)) {
    jf(",\"unsupported\":\"%s needs the filesystem's mount (--mount-source, --mount-target, --mount-type, --mount-data)\"}\n", OPS[s->op]);
    return 0;
  }

  // the file, written before any mapping exists
  f.fd = open(f.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f.fd < 0) die("open test file");
  if (s->pmd && opt.extent_hint) {
    struct fsxattr fa;
    if (ioctl(f.fd, FS_IOC_FSGETXATTR, &fa) == 0) {
      fa.fsx_xflags |= FS_XFLAG_EXTSIZE;
      fa.fsx_extsize = PMD_SIZE;
      ioctl(f.fd, FS_IOC_FSSETXATTR, &fa);
    }
  }
  unsigned char *pattern = malloc(file_len);
  fill(pattern, file_len, file_id, ORIGINAL, 0);
  if (pwrite(f.fd, pattern, file_len, 0) != (ssize_t)file_len) die("pwrite test file");
  struct statx stx;
  statx(AT_FDCWD, f.path, 0, STATX_BASIC_STATS, &stx);
  int dax = (stx.stx_attributes & STATX_ATTR_DAX_) != 0;
  jf(",\"daxVerified\":%s", dax ? "true" : "false");

  // the op's second file: a clone destination (empty), a copy/clone source, or a dedupe twin
  int peer_tagged = 0, dest_op = 0;
  switch (s->op) {
    case OP_FICLONE_DEST: case OP_FICLONERANGE: case OP_COPY_RANGE:
      peer_id = (uint32_t)(random() & 0x7ffffffe) + 1, peer_tagged = 1, dest_op = 1;
      break;
    case OP_DEDUPE: peer_id = file_id, peer_tagged = 1; break;
    default: break;
  }
  // The pinned range may hold its own bytes, the bytes written through the pin or the
  // mapping, and the peer's bytes where the op copies or clones them in.
  struct roles roles = {0};
  role(&roles, file_id, ORIGINAL, 'o');
  role(&roles, file_id, WRITTEN, 'w');
  if (dest_op) role(&roles, peer_id, ORIGINAL, 'p');
  int needs_peer = peer_tagged || s->op == OP_FICLONE_SRC;
  if (needs_peer) {
    snprintf(f.peer_path, sizeof f.peer_path, "%s.peer", base);
    f.peer_fd = open(f.peer_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f.peer_fd < 0) die("open peer file");
    if (peer_tagged) {
      fill(pattern, file_len, peer_id, ORIGINAL, 0);
      if (pwrite(f.peer_fd, pattern, file_len, 0) != (ssize_t)file_len) die("pwrite peer file");
    }
  }

  // map (at a 2 MiB-aligned address inside a reservation) and touch every page
  size_t res_len = file_len + PMD_SIZE;
  char *res = mmap(NULL, res_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) die("mmap reservation");
  char *map = (char *)(((uintptr_t)res + PMD_SIZE - 1) & ~(uintptr_t)(PMD_SIZE - 1));
  int mapped = mmap(map, file_len, PROT_READ | PROT_WRITE, s->flags | MAP_FIXED, f.fd, 0) != MAP_FAILED;
  int map_err = mapped ? 0 : errno;
  int sigbus_fault = 0, sigbus_write = 0, sigbus_buffer = 0;
  struct ring ring = {.fd = -1};
  aio_context_t aio = 0;
  int pipefd[2] = {-1, -1}, held = 0, pin_err = 0, pin_io = 0;
  struct call io;
  struct pin_io pio;
  if (!mapped) {
    munmap(res, res_len);
    jf(",\"pmd\":null,\"map\":{");
    jresult(map_err);
    jf("}");
    goto cleanup;
  }
  statx(AT_FDCWD, f.path, 0, STATX_BASIC_STATS, &stx);
  sigbus_fault = !guarded_touch(map, file_len);
  int pmd = !s->pmd ? 0 : dax ? -1 : pmd_observed(map, file_len);
  jf(",\"pmd\":%s,\"map\":{\"ok\":true,\"errno\":null}", pmd < 0 ? "null" : pmd ? "true" : "false");

  // pin
  switch (s->pin) {
    case PIN_NONE: break;
    case PIN_URING_FIXED: {
      pin_err = ring_open(&ring);
      if (pin_err) break;
      struct iovec iov = {map + PIN_OFF, PIN_LEN};
      if (syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_BUFFERS, &iov, 1) != 0) pin_err = errno;
      else held = 1;
      break;
    }
    case PIN_VMSPLICE: {
      if (pipe2(pipefd, O_CLOEXEC) != 0) die("pipe2");
      if (fcntl(pipefd[1], F_SETPIPE_SZ, 65536) < 0) die("F_SETPIPE_SZ");
      struct iovec iov = {map + PIN_OFF, PIN_LEN};
      if (vmsplice(pipefd[1], &iov, 1, SPLICE_F_NONBLOCK) < 0) pin_err = errno;
      else held = 1;
      break;
    }
    default: {
      peer_drain_held();
      if (s->pin == PIN_URING_READ || s->pin == PIN_URING_WRITE) {
        pin_err = ring_open(&ring);
        if (pin_err) break;
      }
      if (s->pin == PIN_AIO_READ || s->pin == PIN_AIO_WRITE) {
        if (syscall(__NR_io_setup, 1, &aio) != 0) {
          pin_err = errno;
          aio = 0;
          break;
        }
      }
      pio = (struct pin_io){s->pin, peer.fd, map + PIN_OFF, &ring, aio};
      call_start(&io, run_pin_io, &pio);
      pin_io = 1;
      // The kernel pins the pages before it sends the request: a held request is a held pin.
      double until = now_ms() + (opt.hold_ms > 2000 ? opt.hold_ms : 2000);
      for (;;) {
        struct pollfd p[2] = {{peer.sock, POLLIN, 0}, {io.efd, POLLIN, 0}};
        int left = (int)(until - now_ms()), r = left > 0 ? poll(p, 2, left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r > 0 && (p[0].revents & POLLIN)) {
          char m[8];
          if (recv(peer.sock, m, sizeof m, 0) > 0 && m[0] == 'H') {
            held = 1;
            break;
          }
          continue;  // a late answer to an earlier release
        }
        if (r > 0) {
          call_wait(&io, now_ms());
          pin_err = io.err ? io.err : -1;  // done without ever being held: no pin
        } else {
          pin_err = -1;
        }
        break;
      }
    }
  }
  jf(",\"pin\":{");
  jresult(pin_err);
  jf(",\"held\":%s}", held ? "true" : "false");
  if (held && s->pin == PIN_VMSPLICE) {
    // written through the mapping after vmsplice: does the pipe hold the pages or a copy?
    unsigned char w[PIN_LEN];
    fill(w, PIN_LEN, file_id, WRITTEN, PIN_FIRST_PAGE);
    sigbus_write = !guarded_copy(map + PIN_OFF, w, PIN_LEN);
  }
  char *before = facts(f.fd), *after = NULL;
  if (s->unmapped) {
    munmap(res, res_len);
    mapped = 0;
  }

  // the op, on a thread of its own, while the pin is held
  struct op_arg oa = {s->op, &f};
  struct call op;
  double op_start = now_ms();
  call_start(&op, run_op, &oa);
  int early = hold(&op, op_start);
  int ncanaries = 0;
  char canary[4096 + 32];
  uint32_t canary_id[MAX_CANARIES];
  if (early && held && opt.canary_bytes > 0) {
    // freed blocks become allocatable once the transaction that freed them commits
    int sfd = f.fd >= 0 ? f.fd : f.peer_fd >= 0 ? f.peer_fd : open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    syncfs(sfd);
    if (sfd != f.fd && sfd != f.peer_fd) close(sfd);
    unsigned char *cb = malloc(CANARY_FILE);
    for (long written = 0; written < opt.canary_bytes && ncanaries < MAX_CANARIES; written += CANARY_FILE) {
      snprintf(canary, sizeof canary, "%s.canary%d", f.path, ncanaries);
      canary_id[ncanaries] = (uint32_t)(random() & 0x7ffffffe) + 1;
      fill(cb, CANARY_FILE, canary_id[ncanaries], ORIGINAL, 0);
      int cfd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      ssize_t w = cfd >= 0 ? write(cfd, cb, CANARY_FILE) : -1;
      if (cfd >= 0) close(cfd);
      if (w != CANARY_FILE) {
        unlink(canary);
        break;
      }
      ncanaries++;
    }
    free(cb);
  }

  // release, with a last look at the op's thread right before it
  char at_release = op.done ? 0 : task_state(op.tid);
  int asleep_at_release = !op.done && op.in_kernel && (at_release == 'S' || at_release == 'D') && op.in_kernel;
  double released_at = now_ms();
  int release_err = 0;
  long release_result = -1;
  unsigned char drained[PIN_LEN];
  size_t drained_len = 0;
  if (held) {
    switch (s->pin) {
      case PIN_URING_FIXED:
        if (syscall(__NR_io_uring_register, ring.fd, IORING_UNREGISTER_BUFFERS, NULL, 0) != 0) release_err = errno;
        break;
      case PIN_VMSPLICE:
        fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
        while (drained_len < PIN_LEN) {
          ssize_t r = read(pipefd[0], drained + drained_len, PIN_LEN - drained_len);
          if (r <= 0) break;
          drained_len += r;
        }
        release_result = drained_len;
        break;
      default:
        if (peer_release(file_id) != 0) die("FUSE peer");
        if (!call_wait(&io, now_ms() + (opt.settle_ms > 1000 ? opt.settle_ms : 1000))) release_err = -1;
        else if (io.err) release_err = io.err;
        else release_result = io.ret;
    }
  }
  if (pin_io && !held) call_wait(&io, now_ms() + 1000);

  // settle: give the op settle_ms after the release, then signal it
  const char *hung = "null";
  char state = 0;
  if (!call_wait(&op, now_ms() + opt.settle_ms)) {
    state = task_state(op.tid);
    syscall(SYS_tgkill, getpid(), op.tid, SIGRTMIN + 4);
    if (!call_wait(&op, now_ms() + opt.signal_wait_ms)) hung = "\"uninterruptible\"";
    else hung = op.err == EINTR ? "\"interruptible\"" : "\"woken-by-signal\"";
  }
  if (!op.done) {
    jf(",\"file\":{\"before\":%s,\"after\":null,\"pathAfter\":null},\"op\":{\"started\":true,\"ok\":false,\"errno\":null,\"result\":null,\"dedupe\":null,"
       "\"returnedMs\":null,\"asleepAtRelease\":%s,\"blockedUntilRelease\":false,\"hung\":%s,\"taskState\":\"%c\"}}\n",
       before, asleep_at_release ? "true" : "false", hung, state);
    return 3;  // views not read: reading the file could block behind the stuck op
  }
  int blocked = held && asleep_at_release && op.done_at >= released_at;

  // views, after everything has settled
  char pipe_pages[PIN_PAGES + 1] = "----", buffer_pages[PIN_PAGES + 1] = "----", file_pages[PIN_PAGES + 1] = "----", peer_pages[PIN_PAGES + 1] = "----";
  if (s->pin == PIN_VMSPLICE && held && !release_err) page_string(pipe_pages, drained, drained_len, PIN_PAGES, PIN_FIRST_PAGE, &roles);
  unsigned char view[PIN_LEN];
  if (mapped) {
    if (guarded_copy(view, map + PIN_OFF, PIN_LEN)) page_string(buffer_pages, view, PIN_LEN, PIN_PAGES, PIN_FIRST_PAGE, &roles);
    else sigbus_buffer = 1;
  }
  // Is the file's path still there? What an unlink (or an umount that lost it) did.
  struct stat path_st;
  int path_err = lstat(f.path, &path_st) == 0 ? 0 : errno;
  if (f.fd >= 0) {
    page_string(file_pages, view, pread_all(f.fd, view, PIN_LEN, PIN_OFF), PIN_PAGES, PIN_FIRST_PAGE, &roles);
    after = facts(f.fd);
  } else if ((s->op == OP_UMOUNT || s->op == OP_UNLINK_UMOUNT) && path_err == 0) {
    // The still-linked file after its eviction at unmount, read from the filesystem mounted again.
    int fd = open(f.path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      page_string(file_pages, view, pread_all(fd, view, PIN_LEN, PIN_OFF), PIN_PAGES, PIN_FIRST_PAGE, &roles);
      after = facts(fd);
      close(fd);
    }
  }
  if (f.peer_fd >= 0) {
    // The op's second file holds its own bytes; a clone of the pinned file holds the
    // file's bytes as they were when cloned: those written before the op, and the pin's
    // too when the clone waited for the release (lib/engine/timeline.ts).
    struct roles own = {0};
    if (s->op == OP_FICLONE_SRC) {
      role(&own, file_id, ORIGINAL, 'o');
      if ((s->pin == PIN_VMSPLICE && held) || blocked) role(&own, file_id, WRITTEN, 'o');
    } else {
      role(&own, peer_id, ORIGINAL, 'o');
    }
    page_string(peer_pages, view, pread_all(f.peer_fd, view, PIN_LEN, PIN_OFF), PIN_PAGES, PIN_FIRST_PAGE, &own);
  }
  jf(",\"file\":{\"before\":%s,\"after\":%s,\"pathAfter\":{", before, after ? after : "null");
  jresult(path_err);
  jf("}}");
  free(before);
  free(after);
  jf(",\"op\":{\"started\":true,");
  jresult(op.err);
  if (op.err) jf(",\"result\":null");
  else jf(",\"result\":%ld", op.ret);
  if (s->op == OP_DEDUPE && !op.err) jf(",\"dedupe\":{\"status\":\"%s\",\"bytesDeduped\":%ld}", op.aux == 0 ? "same" : "differs", op.ret);
  else jf(",\"dedupe\":null");
  jf(",\"returnedMs\":%.1f,\"seenAsleep\":%s,\"asleepAtRelease\":%s,\"blockedUntilRelease\":%s,\"hung\":%s}", op.done_at - op_start,
     seen_asleep ? "true" : "false", asleep_at_release ? "true" : "false", blocked ? "true" : "false", hung);
  jf(",\"release\":{");
  jresult(release_err);
  if (release_result >= 0) jf(",\"result\":%ld}", release_result);
  else jf(",\"result\":null}");
  jf(",\"views\":{\"pages\":{\"buffer\":\"%s\",\"pipe\":\"%s\",\"file\":\"%s\",\"peer\":\"%s\",\"canary\":\"", buffer_pages, pipe_pages, file_pages, peer_pages);
  if (ncanaries > 0) {
    unsigned char *cb = malloc(CANARY_FILE);
    char cpages[CANARY_FILE / PAGE + 1];
    for (int i = 0; i < ncanaries; i++) {
      snprintf(canary, sizeof canary, "%s.canary%d", f.path, i);
      int cfd = open(canary, O_RDONLY | O_CLOEXEC);
      size_t got = cfd >= 0 ? pread_all(cfd, cb, CANARY_FILE, 0) : 0;
      if (cfd >= 0) close(cfd);
      struct roles own = {0};
      role(&own, canary_id[i], ORIGINAL, 'o');
      page_string(cpages, cb, got, CANARY_FILE / PAGE, 0, &own);
      jf("%s", cpages);
    }
    free(cb);
  }
  jf("\"}},\"canary\":{\"files\":%d,\"bytes\":%d}", ncanaries, ncanaries * CANARY_FILE);
  jf(",\"sigbus\":[");
  int first = 1;
  if (sigbus_fault) jf("\"fault-in\""), first = 0;
  if (sigbus_write) jf("%s\"write-after-pin\"", first ? "" : ","), first = 0;
  if (sigbus_buffer) jf("%s\"buffer\"", first ? "" : ",");
  jf("]");
  call_end(&op);
  for (int i = 0; i < ncanaries; i++) {
    snprintf(canary, sizeof canary, "%s.canary%d", f.path, i);
    unlink(canary);
  }

cleanup:
  if (mapped) munmap(res, res_len);
  if (pin_io) {
    if (!io.done) {
      peer_release(file_id);
      call_wait(&io, now_ms() + 5000);
    }
    if (io.done) call_end(&io);
  }
  ring_close(&ring);
  if (aio) syscall(__NR_io_destroy, aio);
  if (f.freeze_fd >= 0) {
    // A freeze whose thaw did not run (or failed) must not outlive the case (EINVAL: not frozen).
    int arg = 0;
    ioctl(f.freeze_fd, FITHAW, &arg);
    close(f.freeze_fd);
  }
  if (pipefd[0] >= 0) close(pipefd[0]), close(pipefd[1]);
  if (f.fd >= 0) close(f.fd);
  if (f.peer_fd >= 0) close(f.peer_fd);
  unlink(f.path);
  if (needs_peer) unlink(f.peer_path);
  free(pattern);
  kmsg_drain();
  read_tainted();
  jf(",\"wallMs\":%.3f}\n", now_ms() - t0);
  return 0;
}

static int emit(int results_fd) {
  if (results_fd >= 0 && (write(results_fd, js, js_len) != (ssize_t)js_len || fsync(results_fd) != 0)) die("results");
  if (fwrite(js, 1, js_len, stdout) != js_len || fflush(stdout) != 0) die("stdout");
  js_len = 0;
  return 0;
}

static long number(const char *flag, const char *v) {
  char *end;
  long n = v ? strtol(v, &end, 10) : -1;
  if (!v || *end || n < 0) {
    fprintf(stderr, "case: %s needs a whole number\n", flag);
    exit(2);
  }
  return n;
}

int main(int argc, char **argv) {
  int serve = 0;
  const char *pos[2];
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--serve")) serve = 1;
    else if (!strcmp(a, "--extent-hint")) opt.extent_hint = 1;
    else if (!strcmp(a, "--hold-ms")) opt.hold_ms = number(a, v), i++;
    else if (!strcmp(a, "--dwell-ms")) opt.dwell_ms = number(a, v), i++;
    else if (!strcmp(a, "--sample-ms")) opt.sample_ms = number(a, v), i++;
    else if (!strcmp(a, "--settle-ms")) opt.settle_ms = number(a, v), i++;
    else if (!strcmp(a, "--signal-wait-ms")) opt.signal_wait_ms = number(a, v), i++;
    else if (!strcmp(a, "--canary-bytes")) opt.canary_bytes = number(a, v), i++;
    else if (!strcmp(a, "--fuse-dir") && v) opt.fuse_dir = v, i++;
    else if (!strcmp(a, "--results") && v) opt.results = v, i++;
    else if (!strcmp(a, "--mount-source") && v) opt.mount_source = v, i++;
    else if (!strcmp(a, "--mount-target") && v) opt.mount_target = v, i++;
    else if (!strcmp(a, "--mount-type") && v) opt.mount_type = v, i++;
    else if (!strcmp(a, "--mount-data") && v) opt.mount_data = v, i++;
    else if (!strcmp(a, "--hold-mode") && v && (!strcmp(v, "fixed") || !strcmp(v, "evidence"))) opt.fixed_hold = !strcmp(v, "fixed"), i++;
    else if (a[0] != '-' && npos < 2) pos[npos++] = a;
    else {
      fprintf(stderr, "case: bad argument %s; usage: case [options] DIR CASE-ID | case [options] --serve DIR\n", a);
      return 2;
    }
  }
  if (npos != (serve ? 1 : 2)) {
    fprintf(stderr, "case: usage: case [options] DIR CASE-ID | case [options] --serve DIR\n");
    return 2;
  }
  opt.dir = pos[0];
  if (!opt.fuse_dir) opt.fuse_dir = opt.dir;
  if (opt.sample_ms < 1) opt.sample_ms = 1;
  int results_fd = -1;
  if (opt.results && (results_fd = open(opt.results, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) die("open results");
  srandom((unsigned)getpid() ^ (unsigned)time(NULL));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigbus;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGBUS, &sa, NULL);
  sa.sa_handler = on_interrupt;
  sa.sa_flags = 0;  // no SA_RESTART: a signalled op returns EINTR
  sigaction(SIGRTMIN + 4, &sa, NULL);
  kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (kmsg_fd >= 0) lseek(kmsg_fd, 0, SEEK_END);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  signal(SIGTERM, on_terminate);
  signal(SIGINT, on_terminate);
  signal(SIGHUP, on_terminate);
  peer_start();
  int status = 0;
  char line[256];
  struct spec s;
  if (!serve) {
    if (parse(pos[1], &s) != 0) {
      fprintf(stderr, "case: unknown case %s\n", pos[1]);
      peer_stop();
      return 2;
    }
    status = run_case(pos[1], &s);
    emit(results_fd);
  } else {
    while (status == 0 && fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\n")] = 0;
      if (!line[0]) continue;
      if (parse(line, &s) != 0) {
        jf("{\"caseId\":\"%s\",\"error\":\"unknown case\"}\n", line);
      } else {
        status = run_case(line, &s);
      }
      emit(results_fd);
    }
  }
  if (status == 3) _exit(3);  // a thread is stuck in the kernel: leave everything as it is
  peer_stop();
  return status;
}
