// Layout operations: what a filesystem does to a file's blocks. All of them can
// wait on pinned pages (break layouts), so each runs as a blocking call.
#include "blocking.h"
#include "errors.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace daxpin {

// startFtruncate(fd, length)
Napi::Value StartFtruncate(const Napi::CallbackInfo& info) {
  int64_t fd, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &length)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "ftruncate", [fd, length] { return FromSyscall(ftruncate(fd, length)); });
}

// startFallocate(fd, mode, offset, length): mode is the raw FALLOC_FL_* mask.
Napi::Value StartFallocate(const Napi::CallbackInfo& info) {
  int64_t fd, mode, offset, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &mode) || !ArgInt(info, 2, &offset) || !ArgInt(info, 3, &length))
    return info.Env().Undefined();
  return StartBlocking(info.Env(), "fallocate", [fd, mode, offset, length] {
    return FromSyscall(fallocate(fd, static_cast<int>(mode), offset, length));
  });
}

// startFiclone(destFd, srcFd)
Napi::Value StartFiclone(const Napi::CallbackInfo& info) {
  int64_t dest, src;
  if (!ArgInt(info, 0, &dest) || !ArgInt(info, 1, &src)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "ioctl(FICLONE)", [dest, src] { return FromSyscall(ioctl(dest, FICLONE, src)); });
}

// startFicloneRange(destFd, srcFd, srcOffset, length, destOffset)
Napi::Value StartFicloneRange(const Napi::CallbackInfo& info) {
  int64_t dest, src, srcOffset, length, destOffset;
  if (!ArgInt(info, 0, &dest) || !ArgInt(info, 1, &src) || !ArgInt(info, 2, &srcOffset) || !ArgInt(info, 3, &length) ||
      !ArgInt(info, 4, &destOffset))
    return info.Env().Undefined();
  return StartBlocking(info.Env(), "ioctl(FICLONERANGE)", [dest, src, srcOffset, length, destOffset] {
    struct file_clone_range r = {src, static_cast<__u64>(srcOffset), static_cast<__u64>(length), static_cast<__u64>(destOffset)};
    return FromSyscall(ioctl(dest, FICLONERANGE, &r));
  });
}

// startDedupeRange(srcFd, srcOffset, length, destFd, destOffset) -> { ret: bytesDeduped, aux: status }
// status is the kernel's per-destination result: 0 FILE_DEDUPE_RANGE_SAME,
// 1 FILE_DEDUPE_RANGE_DIFFERS; a negative status is reported as the call's error.
Napi::Value StartDedupeRange(const Napi::CallbackInfo& info) {
  int64_t src, srcOffset, length, dest, destOffset;
  if (!ArgInt(info, 0, &src) || !ArgInt(info, 1, &srcOffset) || !ArgInt(info, 2, &length) || !ArgInt(info, 3, &dest) ||
      !ArgInt(info, 4, &destOffset))
    return info.Env().Undefined();
  return StartBlocking(info.Env(), "ioctl(FIDEDUPERANGE)", [src, srcOffset, length, dest, destOffset] {
    size_t size = sizeof(struct file_dedupe_range) + sizeof(struct file_dedupe_range_info);
    auto* r = static_cast<struct file_dedupe_range*>(calloc(1, size));
    r->src_offset = srcOffset;
    r->src_length = length;
    r->dest_count = 1;
    r->info[0].dest_fd = dest;
    r->info[0].dest_offset = destOffset;
    CallResult c = FromSyscall(ioctl(src, FIDEDUPERANGE, r));
    if (c.err == 0) {
      if (r->info[0].status < 0) c.err = -r->info[0].status;
      c.ret = static_cast<long>(r->info[0].bytes_deduped);
      c.aux = r->info[0].status;
    }
    free(r);
    return c;
  });
}

// startCopyFileRange(inFd, inOffset, outFd, outOffset, length) -> bytes copied
Napi::Value StartCopyFileRange(const Napi::CallbackInfo& info) {
  int64_t in, inOffset, out, outOffset, length;
  if (!ArgInt(info, 0, &in) || !ArgInt(info, 1, &inOffset) || !ArgInt(info, 2, &out) || !ArgInt(info, 3, &outOffset) ||
      !ArgInt(info, 4, &length))
    return info.Env().Undefined();
  return StartBlocking(info.Env(), "copy_file_range", [in, inOffset, out, outOffset, length] {
    loff_t inOff = inOffset, outOff = outOffset;
    return FromSyscall(copy_file_range(in, &inOff, out, &outOff, length, 0));
  });
}

// startUnlink(path)
Napi::Value StartUnlink(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgString(info, 0, &path)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "unlink", [path] { return FromSyscall(unlink(path.c_str())); });
}

// startClose(fd): the last close of an unlinked file evicts its inode, which may wait.
Napi::Value StartClose(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "close", [fd] { return FromSyscall(close(fd)); });
}

// startSyncfs(fd): commits freed extents so the allocator may hand them out again.
Napi::Value StartSyncfs(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "syncfs", [fd] { return FromSyscall(syncfs(fd)); });
}

// startFsSetXattr(fd, xflags, extsize): FS_IOC_FSSETXATTR, e.g. FS_XFLAG_DAX or an
// extent size hint. Reads the current struct first so other fields are kept.
Napi::Value StartFsSetXattr(const Napi::CallbackInfo& info) {
  int64_t fd, xflags, extsize;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &xflags) || !ArgInt(info, 2, &extsize)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "ioctl(FS_IOC_FSSETXATTR)", [fd, xflags, extsize] {
    struct fsxattr fa;
    memset(&fa, 0, sizeof fa);
    CallResult c = FromSyscall(ioctl(fd, FS_IOC_FSGETXATTR, &fa));
    if (c.err != 0) return c;
    fa.fsx_xflags = static_cast<__u32>(xflags);
    fa.fsx_extsize = static_cast<__u32>(extsize);
    return FromSyscall(ioctl(fd, FS_IOC_FSSETXATTR, &fa));
  });
}

}  // namespace daxpin
