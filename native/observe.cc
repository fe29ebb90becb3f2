// Observations: what the kernel says about a file, its extents, its DAX state,
// the kernel log, and a thread. Nothing here interprets what it reads.
#include "errors.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace daxpin {

// statx(path) -> { attributes, attributesMask, size, blocks, ino, dev, mode }
// attributes carries STATX_ATTR_DAX (0x200000) when the file is in DAX state.
Napi::Value Statx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgString(info, 0, &path)) return env.Undefined();
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, &stx) != 0)
    return ThrowSystemError(env, errno, "statx");
  Napi::Object r = Napi::Object::New(env);
  r.Set("attributes", Napi::Number::New(env, static_cast<double>(stx.stx_attributes)));
  r.Set("attributesMask", Napi::Number::New(env, static_cast<double>(stx.stx_attributes_mask)));
  r.Set("size", Napi::Number::New(env, static_cast<double>(stx.stx_size)));
  r.Set("blocks", Napi::Number::New(env, static_cast<double>(stx.stx_blocks)));
  r.Set("ino", Napi::Number::New(env, static_cast<double>(stx.stx_ino)));
  r.Set("dev", Napi::String::New(env, std::to_string(stx.stx_dev_major) + ":" + std::to_string(stx.stx_dev_minor)));
  r.Set("mode", Napi::Number::New(env, stx.stx_mode));
  return r;
}

// fiemap(fd, offset, length, sync) -> [{ logical, physical, length, flags }]. sync sets
// FIEMAP_FLAG_SYNC (writes dirty pages back first): only for files whose writeback
// changes nothing under test (canaries), never for the pinned file.
Napi::Value Fiemap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &offset) || !ArgInt(info, 2, &length)) return env.Undefined();
  bool sync = info.Length() > 3 && info[3].ToBoolean().Value();
  const unsigned maxExtents = 256;
  size_t size = sizeof(struct fiemap) + maxExtents * sizeof(struct fiemap_extent);
  auto* fm = static_cast<struct fiemap*>(calloc(1, size));
  fm->fm_start = offset;
  fm->fm_length = length;
  fm->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
  fm->fm_extent_count = maxExtents;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
    int err = errno;
    free(fm);
    return ThrowSystemError(env, err, "ioctl(FS_IOC_FIEMAP)");
  }
  Napi::Array a = Napi::Array::New(env, fm->fm_mapped_extents);
  for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("logical", Napi::Number::New(env, static_cast<double>(fm->fm_extents[i].fe_logical)));
    e.Set("physical", Napi::Number::New(env, static_cast<double>(fm->fm_extents[i].fe_physical)));
    e.Set("length", Napi::Number::New(env, static_cast<double>(fm->fm_extents[i].fe_length)));
    e.Set("flags", Napi::Number::New(env, fm->fm_extents[i].fe_flags));
    a.Set(i, e);
  }
  free(fm);
  return a;
}

// fsGetXattr(fd) -> { xflags, extsize }
Napi::Value FsGetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return env.Undefined();
  struct fsxattr fa;
  memset(&fa, 0, sizeof fa);
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) != 0) return ThrowSystemError(env, errno, "ioctl(FS_IOC_FSGETXATTR)");
  Napi::Object r = Napi::Object::New(env);
  r.Set("xflags", Napi::Number::New(env, fa.fsx_xflags));
  r.Set("extsize", Napi::Number::New(env, fa.fsx_extsize));
  return r;
}

// kmsgOpen(fromEnd) -> fd: /dev/kmsg non-blocking, positioned at the end when
// fromEnd (only lines logged from now on are read).
Napi::Value KmsgOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool fromEnd = info.Length() > 0 && info[0].ToBoolean().Value();
  int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowSystemError(env, errno, "open(/dev/kmsg)");
  if (fromEnd && lseek(fd, 0, SEEK_END) < 0) {
    int err = errno;
    close(fd);
    return ThrowSystemError(env, err, "lseek(/dev/kmsg)");
  }
  return Napi::Number::New(env, fd);
}

// kmsgRead(fd) -> [record, ...]: every record available now, raw
// ("prio,seq,usec,flags;text\n KEY=value..."). EPIPE (records overwritten
// before we read them) is reported as a record "<lost>" so lib/ can say so.
Napi::Value KmsgRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return env.Undefined();
  Napi::Array a = Napi::Array::New(env);
  uint32_t n = 0;
  char buf[8192];
  for (;;) {
    ssize_t r = read(static_cast<int>(fd), buf, sizeof buf - 1);
    if (r < 0) {
      if (errno == EAGAIN) break;
      if (errno == EPIPE) { a.Set(n++, Napi::String::New(env, "<lost>")); continue; }
      if (errno == EINTR) continue;
      return ThrowSystemError(env, errno, "read(/dev/kmsg)");
    }
    a.Set(n++, Napi::String::New(env, buf, static_cast<size_t>(r)));
  }
  return a;
}

// tgkill(tid, signal): signals one thread of this process (the op thread).
Napi::Value Tgkill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t tid, sig;
  if (!ArgInt(info, 0, &tid) || !ArgInt(info, 1, &sig)) return env.Undefined();
  if (syscall(SYS_tgkill, getpid(), static_cast<pid_t>(tid), static_cast<int>(sig)) != 0)
    return ThrowSystemError(env, errno, "tgkill");
  return env.Undefined();
}

// PAGEMAP_SCAN (Linux 6.7) as in include/uapi/linux/fs.h; older headers lack it.
namespace {
struct PmScanArg {
  uint64_t size, flags, start, end, walkEnd, vec, vecLen, maxPages;
  uint64_t categoryInverted, categoryMask, categoryAnyofMask, returnMask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsHuge = 1 << 6;
}  // namespace

// pagemapScanHuge(address: bigint, length) -> bytes of [address, address+length) that
// the page tables map huge (PMD-mapped THP or hugetlb), by PAGEMAP_SCAN on
// /proc/self/pagemap. Kernels before 6.7 fail with ENOTTY.
Napi::Value PagemapScanHuge(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBigInt()) return ThrowTypeError(env, "argument 0 must be a bigint");
  bool lossless;
  uint64_t start = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  int64_t length;
  if (!ArgInt(info, 1, &length)) return env.Undefined();
  static int fd = -1;  // kept open: one per process, like the mapping it describes
  if (fd < 0) fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ThrowSystemError(env, errno, "open(/proc/self/pagemap)");
  PageRegion regions[64];
  PmScanArg arg = {};
  arg.size = sizeof arg;
  arg.start = start;
  arg.end = start + static_cast<uint64_t>(length);
  arg.vec = reinterpret_cast<uint64_t>(regions);
  arg.vecLen = sizeof regions / sizeof regions[0];
  arg.categoryMask = kPageIsHuge;
  arg.returnMask = kPageIsHuge;
  uint64_t huge = 0;
  for (;;) {
    long n = ioctl(fd, kPagemapScan, &arg);
    if (n < 0) return ThrowSystemError(env, errno, "ioctl(PAGEMAP_SCAN)");
    for (long i = 0; i < n; i++) huge += regions[i].end - regions[i].start;
    if (arg.walkEnd >= arg.end || n < static_cast<long>(arg.vecLen)) break;
    arg.start = arg.walkEnd;
  }
  return Napi::Number::New(env, static_cast<double>(huge));
}

}  // namespace daxpin
