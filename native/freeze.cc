// FIFREEZE / FITHAW of the filesystem an fd is on: blocking calls (a freeze syncs
// the filesystem and waits for its writers; a thaw may wait for a freeze).
#include "blocking.h"
#include "errors.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

namespace daxpin {

namespace {

Napi::Value StartFreezeIoctl(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  return StartBlocking(info.Env(), name, [fd, request] {
    int arg = 0;
    return FromSyscall(ioctl(static_cast<int>(fd), request, &arg));
  });
}

// startFreeze(fd) / startThaw(fd) -> { tid, promise }
Napi::Value StartFreeze(const Napi::CallbackInfo& info) { return StartFreezeIoctl(info, FIFREEZE, "ioctl(FIFREEZE)"); }
Napi::Value StartThaw(const Napi::CallbackInfo& info) { return StartFreezeIoctl(info, FITHAW, "ioctl(FITHAW)"); }

}  // namespace

void InitFreeze(Napi::Env env, Napi::Object exports) {
  exports.Set("startFreeze", Napi::Function::New(env, StartFreeze));
  exports.Set("startThaw", Napi::Function::New(env, StartThaw));
}

}  // namespace daxpin
