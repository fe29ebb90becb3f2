// mount(2)/umount2(2): kept apart from files including <linux/fs.h>, whose
// MS_* definitions collide with glibc's <sys/mount.h>.
#include "blocking.h"
#include "errors.h"

#include <sys/mount.h>

namespace daxpin {

// mount(source, target, fstype, flags, data): used for the FUSE I/O peer and for
// filesystems on devices lib/ has already checked.
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  int64_t flags;
  if (!ArgString(info, 0, &source) || !ArgString(info, 1, &target) || !ArgString(info, 2, &fstype) ||
      !ArgInt(info, 3, &flags) || !ArgString(info, 4, &data))
    return env.Undefined();
  if (mount(source.c_str(), target.c_str(), fstype.c_str(), static_cast<unsigned long>(flags), data.c_str()) != 0)
    return ThrowSystemError(env, errno, "mount");
  return env.Undefined();
}

// startUmount(target, flags): umount can wait on a busy or wedged filesystem.
Napi::Value StartUmount(const Napi::CallbackInfo& info) {
  std::string target;
  int64_t flags;
  if (!ArgString(info, 0, &target) || !ArgInt(info, 1, &flags)) return info.Env().Undefined();
  return StartBlocking(info.Env(), "umount2", [target, flags] {
    return FromSyscall(umount2(target.c_str(), static_cast<int>(flags)));
  });
}

}  // namespace daxpin
