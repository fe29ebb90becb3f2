// A lying addon, for mutation checks (scripts/mutate-addon): an LD_PRELOAD library
// that makes chosen syscalls of daxpin's addon (build/Release/daxpin.node) return
// success, or a fixed errno, without reaching the kernel. Only calls made from the
// addon are answered so (the caller's address is looked up with dladdr): node, the
// test harness and test/reference/case.c make theirs as usual. The suite must fail
// under every mutation: a harness that records what it was told instead of what
// the kernel did is broken.
//
// DAXPIN_LIE=NAME[:ERRNO][,NAME...], NAME one of
//   ftruncate  fallocate  punch-hole  zero-range  collapse-range  insert-range
//   ficlone  ficlonerange  dedupe  copy-range  fssetxattr  read (pread)  write (pwrite)
//   vmsplice (copies into the pipe: no page references)
//   uring-io (IORING_OP_READ/WRITE submitted as IORING_OP_NOP)  uring-register  unlink
//   aio-io (io_submit answered without the kernel; io_getevents then hands back a
//     completion of every byte asked for)
//   freeze (FIFREEZE)
//   thaw (FITHAW: only the first after each freeze the addon made; the clean-up's thaw
//     after it is real, so the filesystem is not left frozen once the case is over)
//   umount (umount2 with flags 0 in daxpin's worker process: the umount op's. The test
//     process's scratch teardown and the FUSE peer's unmounts go through the same call
//     and are left alone. When it "succeeds", the worker's next mount(2) on that target
//     is answered 0 too: a real one would stack a second mount on the first)
// Without :ERRNO the call "succeeds" (returns 0, or the byte count asked for).
//
// No lie for mount(2): after a real umount it would leave the filesystem unmounted, and
// the reference, which runs next in the same directory, could not even create its file:
// a crash, not a disagreement of facts.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef FS_IOC_FSSETXATTR
#define FS_IOC_FSSETXATTR _IOW('X', 32, struct fsxattr)
#endif

// -1: no lie; 0: succeed; >0: fail with that errno
static int lie_for(const char *name) {
  const char *spec = getenv("DAXPIN_LIE");
  size_t n = strlen(name);
  for (const char *p = spec; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= n && !strncmp(p, name, n) && (len == n || p[n] == ':')) {
      if (len == n) return 0;
      char code[32] = {0};
      memcpy(code, p + n + 1, len - n - 1 < sizeof code - 1 ? len - n - 1 : sizeof code - 1);
      if (!strcmp(code, "EOPNOTSUPP")) return EOPNOTSUPP;
      if (!strcmp(code, "EINVAL")) return EINVAL;
      if (!strcmp(code, "EPERM")) return EPERM;
      if (!strcmp(code, "EFAULT")) return EFAULT;
      if (!strcmp(code, "EBUSY")) return EBUSY;
      if (!strcmp(code, "EIO")) return EIO;
      return atoi(code) > 0 ? atoi(code) : EIO;
    }
    p = end ? end + 1 : NULL;
  }
  return -1;
}

static int from_addon(void *caller) {
  Dl_info info;
  if (!dladdr(caller, &info) || !info.dli_fname) return 0;
  size_t n = strlen(info.dli_fname);
  return n >= 11 && !strcmp(info.dli_fname + n - 11, "daxpin.node");
}

// The lie for `name` when the caller is the addon; -2: make the real call.
static long lie(const char *name, void *caller, long success) {
  int l = lie_for(name);
  if (l < 0 || !from_addon(caller)) return -2;
  if (l == 0) return success;
  errno = l;
  return -1;
}
#define LIE(name, success)                                          \
  do {                                                              \
    long r_ = lie(name, __builtin_return_address(0), (success));    \
    if (r_ != -2) return r_;                                        \
  } while (0)
#define REAL(ret, fn, ...)                                   \
  (*__extension__({                                          \
    static ret (*real_)(__VA_ARGS__);                        \
    if (!real_) real_ = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #fn); \
    &real_;                                                  \
  }))

int ftruncate64(int fd, off_t len) {
  LIE("ftruncate", 0);
  return REAL(int, ftruncate64, int, off_t)(fd, len);
}
int ftruncate(int fd, off_t len) {
  LIE("ftruncate", 0);
  return REAL(int, ftruncate, int, off_t)(fd, len);
}

static const char *fallocate_name(int mode) {
  if (mode & FALLOC_FL_PUNCH_HOLE) return "punch-hole";
  if (mode & FALLOC_FL_ZERO_RANGE) return "zero-range";
  if (mode & FALLOC_FL_COLLAPSE_RANGE) return "collapse-range";
  if (mode & FALLOC_FL_INSERT_RANGE) return "insert-range";
  return "fallocate";
}
int fallocate64(int fd, int mode, off_t off, off_t len) {
  LIE("fallocate", 0);
  LIE(fallocate_name(mode), 0);
  return REAL(int, fallocate64, int, int, off_t, off_t)(fd, mode, off, len);
}
int fallocate(int fd, int mode, off_t off, off_t len) {
  LIE("fallocate", 0);
  LIE(fallocate_name(mode), 0);
  return REAL(int, fallocate, int, int, off_t, off_t)(fd, mode, off, len);
}

// Set by a freeze the addon made (real or lied): the next FITHAW is the op's own.
static int thaw_is_the_ops;

int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (req == FIFREEZE && from_addon(__builtin_return_address(0))) {
    thaw_is_the_ops = 1;
    LIE("freeze", 0);
  }
  if (req == FITHAW && thaw_is_the_ops && from_addon(__builtin_return_address(0))) {
    thaw_is_the_ops = 0;
    LIE("thaw", 0);
  }
  if (req == FICLONE) LIE("ficlone", 0);
  if (req == FICLONERANGE) LIE("ficlonerange", 0);
  if (req == FIDEDUPERANGE) LIE("dedupe", 0);  // status 0 (same), bytes_deduped left as it was
  if (req == FS_IOC_FSSETXATTR) LIE("fssetxattr", 0);
  return REAL(int, ioctl, int, unsigned long, void *)(fd, req, arg);
}

ssize_t copy_file_range(int in, loff_t *in_off, int out, loff_t *out_off, size_t len, unsigned flags) {
  LIE("copy-range", (long)len);
  return REAL(ssize_t, copy_file_range, int, loff_t *, int, loff_t *, size_t, unsigned)(in, in_off, out, out_off, len, flags);
}

// The O_DIRECT pins: pread()/pwrite() of the FUSE file. (The addon's plain read() is
// its /dev/kmsg reader, left alone.)
ssize_t pread64(int fd, void *buf, size_t n, off_t off) {
  LIE("read", (long)n);
  return REAL(ssize_t, pread64, int, void *, size_t, off_t)(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  LIE("write", (long)n);
  return REAL(ssize_t, pwrite64, int, const void *, size_t, off_t)(fd, buf, n, off);
}
// vmsplice that copies: the pipe gets the bytes, not references to the pages (what a
// "vmsplice copies" kernel would do); nothing holds the pages. An errno lie fails it.
ssize_t vmsplice(int fd, const struct iovec *iov, size_t n, unsigned flags) {
  int l = lie_for("vmsplice");
  if (l > 0 && from_addon(__builtin_return_address(0))) {
    errno = l;
    return -1;
  }
  if (l == 0 && from_addon(__builtin_return_address(0))) return writev(fd, iov, n);
  return REAL(ssize_t, vmsplice, int, const struct iovec *, size_t, unsigned)(fd, iov, n, flags);
}
int unlink(const char *path) {
  LIE("unlink", 0);
  return REAL(int, unlink, const char *)(path);
}

// Whether this process is daxpin's worker (dist/lib/engine/worker.js), where the ops run.
static int in_worker(void) {
  static int known = -1;
  if (known < 0) {
    char cmd[4096] = {0};
    FILE *f = fopen("/proc/self/cmdline", "r");
    size_t n = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f) fclose(f);
    known = 0;
    for (size_t i = 0; i < n; i += strlen(cmd + i) + 1) {
      size_t len = strlen(cmd + i);
      if (len >= 9 && !strcmp(cmd + i + len - 9, "worker.js")) known = 1;
    }
  }
  return known;
}

// The target of an umount that "succeeded" without unmounting: its mount again is answered too.
static char still_mounted[4096];
int umount2(const char *target, int flags) {
  if (flags == 0 && in_worker()) {
    long r = lie("umount", __builtin_return_address(0), 0);
    if (r == 0) snprintf(still_mounted, sizeof still_mounted, "%s", target);
    if (r != -2) return r;
  }
  return REAL(int, umount2, const char *, int)(target, flags);
}
int mount(const char *source, const char *target, const char *type, unsigned long flags, const void *data) {
  if (still_mounted[0] && in_worker() && !strcmp(target, still_mounted) && from_addon(__builtin_return_address(0))) {
    still_mounted[0] = 0;
    return 0;
  }
  return REAL(int, mount, const char *, const char *, const char *, unsigned long, const void *)(source, target, type, flags, data);
}

// Legacy AIO: submissions the kernel never saw, and the completions handed back for them.
static struct { aio_context_t ctx; struct io_event ev[8]; int n; } fake_aio[16];
static long aio_submit_lie(long ctx, long nr, struct iocb **cbs) {
  for (int i = 0; i < 16; i++) {
    if (fake_aio[i].ctx != 0 && fake_aio[i].ctx != (aio_context_t)ctx) continue;
    fake_aio[i].ctx = ctx;
    for (long j = 0; j < nr && fake_aio[i].n < 8; j++)
      fake_aio[i].ev[fake_aio[i].n++] = (struct io_event){cbs[j]->aio_data, (uintptr_t)cbs[j], (int64_t)cbs[j]->aio_nbytes, 0};
    return nr;
  }
  errno = EAGAIN;
  return -1;
}
// The faked completions of ctx, or -2 when it has none.
static long aio_getevents_lie(long ctx, long max, struct io_event *out) {
  for (int i = 0; i < 16; i++) {
    if (fake_aio[i].ctx != (aio_context_t)ctx || fake_aio[i].n == 0) continue;
    long n = fake_aio[i].n < max ? fake_aio[i].n : max;
    memcpy(out, fake_aio[i].ev, n * sizeof *out);
    memmove(fake_aio[i].ev, fake_aio[i].ev + n, (fake_aio[i].n - n) * sizeof *out);
    fake_aio[i].n -= n;
    return n;
  }
  return -2;
}

// io_uring: the addon maps the SQE array of each ring; remember where, so a submission
// can be rewritten as a NOP (it completes at once, result 0, and pins nothing).
static struct { int fd; struct io_uring_sqe *sqes; unsigned count; } rings[64];
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *p = REAL(void *, mmap64, void *, size_t, int, int, int, off_t)(addr, len, prot, flags, fd, off);
  if (p != MAP_FAILED && off == (off_t)IORING_OFF_SQES && from_addon(__builtin_return_address(0))) {
    for (int i = 0; i < 64; i++)
      if (rings[i].fd == 0 || rings[i].fd == fd) {
        rings[i].fd = fd;
        rings[i].sqes = p;
        rings[i].count = len / sizeof(struct io_uring_sqe);
        break;
      }
  }
  return p;
}

long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  void *caller = __builtin_return_address(0);
  if (nr == __NR_io_uring_register && (a[1] == IORING_REGISTER_BUFFERS || a[1] == IORING_UNREGISTER_BUFFERS)) {
    long r = lie("uring-register", caller, 0);
    if (r != -2) return r;
  }
  if (nr == __NR_io_submit && lie_for("aio-io") >= 0 && from_addon(caller)) {
    int l = lie_for("aio-io");
    if (l > 0) {
      errno = l;
      return -1;
    }
    return aio_submit_lie(a[0], a[1], (struct iocb **)a[2]);
  }
  if (nr == __NR_io_getevents && from_addon(caller)) {
    long r = aio_getevents_lie(a[0], a[2], (struct io_event *)a[3]);
    if (r != -2) return r;
  }
  if (nr == __NR_io_uring_enter && lie_for("uring-io") >= 0 && from_addon(caller)) {
    int l = lie_for("uring-io");
    if (l > 0) {
      errno = l;
      return -1;
    }
    for (int i = 0; i < 64; i++)
      if (rings[i].fd == a[0] && rings[i].sqes)
        for (unsigned j = 0; j < rings[i].count; j++)
          if (rings[i].sqes[j].opcode == IORING_OP_READ || rings[i].sqes[j].opcode == IORING_OP_WRITE) rings[i].sqes[j].opcode = IORING_OP_NOP;
  }
  return REAL(long, syscall, long, long, long, long, long, long, long)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
