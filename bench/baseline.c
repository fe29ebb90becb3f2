// The floor for daxpin's per-case cost: the same syscall sequence as one daxpin case
// (lib/engine/timeline.ts plus the orchestrator's kernel-log and taint reads), in
// plain C, for the non-blocking subset of the matrix: pin none / vmsplice /
// uring-fixed, op truncate-shrink / truncate-zero / punch-hole, mapping pte-shared /
// pte-shared-unmapped / pmd-shared.
//
// Built by bench/overhead.ts with `cc -O2` into a temp dir. It serves case ids on
// stdin, one per line, and answers each with one line on stdout:
//   <caseId> <microseconds> <canary files written> <views>
// so the bench can interleave it with daxpin cases without counting process start.
// Like daxpin's JSONL, each case's result line is also appended to <results> and
// fsync'd (inside the timed part): a result is on disk before the next case starts.
//
// usage: baseline <dir> <hold-ms> <canary-bytes> <results>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/io_uring.h>
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

#define PAGE 4096
#define PMD_SIZE (2 * 1024 * 1024)
#define PTE_FILE_PAGES 64
#define PMD_FILE_PAGES 1024
#define PIN_FIRST_PAGE 16
#define PIN_PAGES 4
#define RECORD 32
#define CANARY_FILE (256 * 1024)  // as lib/engine/timeline.ts
#define MAX_CANARIES 1024
#define STATX_ATTR_DAX_ 0x00200000
#define TRACE "/sys/kernel/tracing/trace"

static const char *dir;
static long hold_ms;
static long canary_bytes;
static int kmsg_fd = -1;
static unsigned seq;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
  exit(2);
}

// --- patterns (lib/cases/patterns.ts)
static const unsigned char MAGIC[8] = {'D', 'A', 'X', 'P', 'I', 'N', 1, 0};

static void fill(unsigned char *b, size_t len, uint32_t id, uint32_t gen, uint32_t first_page) {
  for (size_t off = 0; off < len; off += RECORD) {
    uint32_t page = first_page + off / PAGE;
    uint32_t v[6] = {id, gen, page, ~id, ~gen, ~page};
    memcpy(b + off, MAGIC, 8);
    memcpy(b + off + 8, v, sizeof v);
  }
}

// Same classes as classifyView: original / written / zero / foreign / garbage / mixed.
static const char *classify(const unsigned char *b, size_t len, uint32_t id, uint32_t orig_gen, int written_ok) {
  int orig = 0, wr = 0, zero = 0, foreign = 0, garbage = 0;
  static const unsigned char zeros[RECORD];
  if (len == 0) return "n/a";
  for (size_t off = 0; off + RECORD <= len; off += RECORD) {
    const unsigned char *r = b + off;
    if (memcmp(r, zeros, RECORD) == 0) { zero++; continue; }
    uint32_t v[6];
    memcpy(v, r + 8, sizeof v);
    if (memcmp(r, MAGIC, 8) != 0 || v[3] != ~v[0] || v[4] != ~v[1] || v[5] != ~v[2]) { garbage++; continue; }
    if (v[0] == id && v[1] == orig_gen) orig++;
    else if (written_ok && v[0] == id && v[1] == 1) wr++;
    else foreign++;
  }
  if (foreign) return "foreign";
  int kinds = !!orig + !!wr + !!zero + !!garbage;
  if (kinds > 1) return "mixed";
  return orig ? "original" : wr ? "written" : zero ? "zero" : "garbage";
}

// --- SIGBUS-guarded copies from the mapping
// volatile: the stores around memcpy must not be dropped or moved.
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
  memcpy(dst, src, n);
  bus_jump = NULL;
  return 1;
}
// one read per page: the fault-in, no copy
static int guarded_touch(const char *p, size_t n) {
  sigjmp_buf j;
  if (sigsetjmp(j, 1)) { bus_jump = NULL; return 0; }
  bus_jump = &j;
  for (size_t i = 0; i < n; i += PAGE) (void)*(const volatile char *)(p + i);
  bus_jump = NULL;
  return 1;
}

// --- orchestrator side: kernel log records since the last call, taint
static void kmsg_drain(void) {
  char buf[8192];
  if (kmsg_fd < 0) return;
  while (read(kmsg_fd, buf, sizeof buf) > 0 || errno == EPIPE || errno == EINTR) {}
}
static long read_tainted(void) {
  char buf[32] = {0};
  int fd = open("/proc/sys/kernel/tainted", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? strtol(buf, NULL, 10) : -1;
}

// --- PMD observation (lib/engine/pmd.ts): none for a mapping shorter than 2 MiB; for
// a DAX file clear the trace buffer and read it back after the fault; for a page-cache
// file read smaps.
static int trace_ok;
static void pmd_begin(int dax) {
  if (!dax || !trace_ok) return;
  int fd = open(TRACE, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd >= 0) close(fd);
}
// PAGEMAP_SCAN (Linux 6.7+, include/uapi/linux/fs.h), as lib/engine/pmd.ts asks first
struct pm_scan_arg_ {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region_ { uint64_t start, end, categories; };
#define PAGEMAP_SCAN_ _IOWR('f', 16, struct pm_scan_arg_)
static int pagemap_fd = -2;
static int pmd_scan(void *addr, size_t len) {
  if (pagemap_fd == -2) pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) return -1;
  struct page_region_ r[64];
  struct pm_scan_arg_ a = {.size = sizeof a, .start = (uintptr_t)addr, .end = (uintptr_t)addr + len,
                           .vec = (uintptr_t)r, .vec_len = 64, .category_mask = 1 << 6, .return_mask = 1 << 6};
  long n = ioctl(pagemap_fd, PAGEMAP_SCAN_, &a);
  if (n < 0) { close(pagemap_fd); pagemap_fd = -1; return -1; }
  return n > 0;
}
static int pmd_end(void *addr, size_t map_len, int dax) {
  static char buf[1 << 20];
  if (!dax) {
    int r = pmd_scan(addr, map_len);
    if (r >= 0) return r;
  }
  const char *path = dax ? TRACE : "/proc/self/smaps";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  ssize_t n;
  while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += n;
  close(fd);
  buf[len] = 0;
  if (dax) return strstr(buf, "dax_pmd_fault_done") != NULL;
  char start[32];
  snprintf(start, sizeof start, "\n%lx-", (unsigned long)addr);
  char *vma = strstr(buf, start);
  if (!vma) return -1;
  char *pmd = strstr(vma, "FilePmdMapped:");
  return pmd ? atol(pmd + 14) > 0 : -1;
}

// --- io_uring registered buffers (native/pins.cc Ring)
struct ring {
  int fd;
  void *sq, *cq, *sqes;
  size_t sq_len, cq_len, sqes_len;
};
static int ring_open(struct ring *r) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  r->fd = syscall(__NR_io_uring_setup, 4, &p);
  if (r->fd < 0) return -1;
  r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) r->sq_len = r->cq_len = r->sq_len > r->cq_len ? r->sq_len : r->cq_len;
  r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  r->cq = (p.features & IORING_FEAT_SINGLE_MMAP) ? r->sq
                                                 : mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
  r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  return 0;
}
static void ring_close(struct ring *r) {
  if (r->fd < 0) return;
  munmap(r->sqes, r->sqes_len);
  if (r->cq != r->sq) munmap(r->cq, r->cq_len);
  munmap(r->sq, r->sq_len);
  close(r->fd);
  r->fd = -1;
}

// --- the op on a thread of its own, so a blocked op cannot stop the hold clock
enum op { TRUNCATE_SHRINK, TRUNCATE_ZERO, PUNCH_HOLE };
struct op_call {
  int fd;
  enum op op;
  int err;
  double done_at;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
};
static void *op_thread(void *arg) {
  struct op_call *c = arg;
  int r;
  switch (c->op) {
    case TRUNCATE_SHRINK: r = ftruncate(c->fd, PIN_FIRST_PAGE * PAGE); break;
    case TRUNCATE_ZERO: r = ftruncate(c->fd, 0); break;
    default: r = fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PIN_FIRST_PAGE * PAGE, PIN_PAGES * PAGE); break;
  }
  pthread_mutex_lock(&c->mu);
  c->err = r < 0 ? errno : 0;
  c->done_at = now_ms();
  c->done = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return NULL;
}
// Waits until the op is done or `until` (CLOCK_MONOTONIC ms) passes; returns done.
static int op_wait(struct op_call *c, double until) {
  struct timespec ts;
  pthread_mutex_lock(&c->mu);
  while (!c->done) {
    double ms = until;
    ts.tv_sec = (time_t)(ms / 1e3);
    ts.tv_nsec = (long)((ms - ts.tv_sec * 1e3) * 1e6);
    if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
  }
  int done = c->done;
  pthread_mutex_unlock(&c->mu);
  return done;
}

static ssize_t pread_all(int fd, unsigned char *b, size_t len, off_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, b + got, len - got, off + got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

struct spec {
  const char *pin;
  enum op op;
  int pmd;
  int unmapped;
};

static int parse(const char *id, struct spec *s) {
  char pin[64], op[64], map[64];
  if (sscanf(id, "%63[^.].%63[^.].%63s", pin, op, map) != 3) return -1;
  if (!strcmp(pin, "none")) s->pin = "none";
  else if (!strcmp(pin, "vmsplice")) s->pin = "vmsplice";
  else if (!strcmp(pin, "uring-fixed")) s->pin = "uring-fixed";
  else return -1;
  if (!strcmp(op, "truncate-shrink")) s->op = TRUNCATE_SHRINK;
  else if (!strcmp(op, "truncate-zero")) s->op = TRUNCATE_ZERO;
  else if (!strcmp(op, "punch-hole")) s->op = PUNCH_HOLE;
  else return -1;
  if (!strcmp(map, "pte-shared")) s->pmd = 0, s->unmapped = 0;
  else if (!strcmp(map, "pte-shared-unmapped")) s->pmd = 0, s->unmapped = 1;
  else if (!strcmp(map, "pmd-shared")) s->pmd = 1, s->unmapped = 0;
  else return -1;
  return 0;
}

// One case, in timeline order. Returns the views summary in `views`.
static void run_case(const struct spec *s, char *views, size_t views_len, int *canaries_out) {
  char path[4096], canary[4096 + 32];
  size_t file_len = (size_t)(s->pmd ? PMD_FILE_PAGES : PTE_FILE_PAGES) * PAGE;
  size_t pin_off = PIN_FIRST_PAGE * PAGE, pin_len = PIN_PAGES * PAGE;
  uint32_t id = (uint32_t)random() | 1;
  unsigned n = ++seq;
  snprintf(path, sizeof path, "%s/base-%d-%u.data", dir, getpid(), n);

  kmsg_drain();
  read_tainted();

  // the file, written before any mapping exists
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) die("open");
  unsigned char *pattern = malloc(file_len);
  fill(pattern, file_len, id, 0, 0);
  if (pwrite(fd, pattern, file_len, 0) != (ssize_t)file_len) die("pwrite");
  struct statx stx;
  statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx);
  int dax = (stx.stx_attributes & STATX_ATTR_DAX_) != 0;

  // map (2 MiB-aligned inside a reservation) and fault every page in
  size_t res_len = file_len + PMD_SIZE;
  char *res = mmap(NULL, res_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  char *map = (char *)(((uintptr_t)res + PMD_SIZE - 1) & ~(uintptr_t)(PMD_SIZE - 1));
  if (mmap(map, file_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) die("mmap");
  statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx);
  int pmd_possible = file_len >= PMD_SIZE;
  if (pmd_possible) pmd_begin(dax);
  guarded_touch(map, file_len);
  if (pmd_possible) pmd_end(map, file_len, dax);

  // pin
  struct ring ring = {.fd = -1};
  int pipefd[2] = {-1, -1};
  int held = 0;
  if (!strcmp(s->pin, "uring-fixed")) {
    if (ring_open(&ring) == 0) {
      struct iovec iov = {map + pin_off, pin_len};
      held = syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_BUFFERS, &iov, 1) == 0;
    }
  } else if (!strcmp(s->pin, "vmsplice")) {
    if (pipe2(pipefd, O_CLOEXEC) != 0) die("pipe2");
    fcntl(pipefd[1], F_SETPIPE_SZ, pin_len > 65536 ? pin_len : 65536);
    struct iovec iov = {map + pin_off, pin_len};
    held = vmsplice(pipefd[1], &iov, 1, SPLICE_F_NONBLOCK) >= 0;
    if (held) {
      // write through the mapping after vmsplice (references, or a copy?)
      unsigned char w[PIN_PAGES * PAGE];
      fill(w, pin_len, id, 1, PIN_FIRST_PAGE);
      sigjmp_buf j;
      if (!sigsetjmp(j, 1)) {
        bus_jump = &j;
        memcpy(map + pin_off, w, pin_len);
      }
      bus_jump = NULL;
    }
  }
  int mapped = 1;
  if (s->unmapped) {
    munmap(res, res_len);
    mapped = 0;
  }

  // the op, concurrently with the held pin
  struct op_call call = {.fd = fd, .op = s->op, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&call.cv, &ca);
  pthread_t th;
  double op_start = now_ms();
  pthread_create(&th, NULL, op_thread, &call);
  int early = op_wait(&call, op_start + hold_ms);
  int ncanaries = 0;
  if (early && held && canary_bytes > 0) {
    // freed blocks become allocatable once the transaction commits
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    syncfs(dfd);
    close(dfd);
    unsigned char *cb = malloc(CANARY_FILE);
    for (long written = 0; written < canary_bytes && ncanaries < MAX_CANARIES; written += CANARY_FILE) {
      snprintf(canary, sizeof canary, "%s.canary%d", path, ncanaries);
      fill(cb, CANARY_FILE, id + 1 + ncanaries, 0, 0);
      int cfd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      ssize_t w = cfd >= 0 ? write(cfd, cb, CANARY_FILE) : -1;
      if (cfd >= 0) close(cfd);
      ncanaries++;
      if (w != CANARY_FILE) break;
    }
    free(cb);
  }
  double wait = op_start + hold_ms - now_ms();
  if (wait > 0) {
    struct timespec ts = {(time_t)(wait / 1e3), (long)((wait - (time_t)(wait / 1e3) * 1e3) * 1e6)};
    nanosleep(&ts, NULL);
  }

  // release
  const char *pipe_view = "n/a";
  unsigned char drained[PIN_PAGES * PAGE];
  if (held && ring.fd >= 0) syscall(__NR_io_uring_register, ring.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
  if (held && pipefd[0] >= 0) {
    size_t got = 0;
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    while (got < pin_len) {
      ssize_t r = read(pipefd[0], drained + got, pin_len - got);
      if (r <= 0) break;
      got += r;
    }
    pipe_view = classify(drained, got, id, 0, 1);
  }
  op_wait(&call, now_ms() + 2000);
  pthread_join(th, NULL);

  // views, after everything has settled
  unsigned char view[PIN_PAGES * PAGE];
  const char *buffer_view = "n/a", *file_view, *canary_view = "n/a";
  if (mapped) buffer_view = guarded_copy(view, map + pin_off, pin_len) ? classify(view, pin_len, id, 0, 1) : "n/a";
  file_view = classify(view, pread_all(fd, view, pin_len, pin_off), id, 0, 1);
  if (ncanaries > 0) {
    unsigned char *cb = malloc(CANARY_FILE);
    for (int i = 0; i < ncanaries; i++) {
      snprintf(canary, sizeof canary, "%s.canary%d", path, i);
      int cfd = open(canary, O_RDONLY | O_CLOEXEC);
      ssize_t got = cfd >= 0 ? pread_all(cfd, cb, CANARY_FILE, 0) : 0;
      if (cfd >= 0) close(cfd);
      const char *c = classify(cb, got, id + 1 + i, 0, 0);
      if (!strcmp(c, "foreign") || !strcmp(canary_view, "n/a")) canary_view = c;
      else if (strcmp(c, canary_view) && strcmp(canary_view, "foreign")) canary_view = "mixed";
    }
    free(cb);
  }

  // clean up
  if (mapped) munmap(res, res_len);
  ring_close(&ring);
  if (pipefd[0] >= 0) close(pipefd[0]), close(pipefd[1]);
  close(fd);
  unlink(path);
  for (int i = 0; i < ncanaries; i++) {
    snprintf(canary, sizeof canary, "%s.canary%d", path, i);
    unlink(canary);
  }
  free(pattern);

  kmsg_drain();
  read_tainted();
  *canaries_out = ncanaries;
  snprintf(views, views_len, "buffer=%s,pipe=%s,file=%s,canary=%s", buffer_view, pipe_view, file_view, canary_view);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: baseline <dir> <hold-ms> <canary-bytes> <results>  (case ids on stdin)\n");
    return 2;
  }
  int results_fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (results_fd < 0) die("open results");
  dir = argv[1];
  hold_ms = atol(argv[2]);
  canary_bytes = atol(argv[3]);
  srandom((unsigned)getpid() ^ (unsigned)time(NULL));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigbus;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGBUS, &sa, NULL);
  kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (kmsg_fd >= 0) lseek(kmsg_fd, 0, SEEK_END);
  trace_ok = access(TRACE, W_OK) == 0;

  char line[256], views[256];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    struct spec s;
    if (parse(line, &s) != 0) {
      printf("%s error unsupported-case\n", line);
      continue;
    }
    int canaries = 0;
    double t0 = now_ms();
    run_case(&s, views, sizeof views, &canaries);
    char record[512];
    int n = snprintf(record, sizeof record, "%s %d %s\n", line, canaries, views);
    if (write(results_fd, record, n) != n || fsync(results_fd) != 0) die("results");
    printf("%s %.0f %d %s\n", line, (now_ms() - t0) * 1e3, canaries, views);
  }
  return 0;
}
