// daxpin native addon: thin syscall wrappers. Policy, timing and classification
// live in lib/ (TypeScript); nothing here decides what an outcome means.
#include <napi.h>
#include <csignal>
#include <cstring>

#include "mapping.h"

namespace daxpin {

Napi::Value StartRead(const Napi::CallbackInfo&);
Napi::Value StartWrite(const Napi::CallbackInfo&);
Napi::Value Pipe(const Napi::CallbackInfo&);
Napi::Value Vmsplice(const Napi::CallbackInfo&);
Napi::Function InitRing(Napi::Env);
Napi::Value StartFtruncate(const Napi::CallbackInfo&);
Napi::Value StartFallocate(const Napi::CallbackInfo&);
Napi::Value StartFiclone(const Napi::CallbackInfo&);
Napi::Value StartFicloneRange(const Napi::CallbackInfo&);
Napi::Value StartDedupeRange(const Napi::CallbackInfo&);
Napi::Value StartCopyFileRange(const Napi::CallbackInfo&);
Napi::Value StartUnlink(const Napi::CallbackInfo&);
Napi::Value StartClose(const Napi::CallbackInfo&);
Napi::Value StartSyncfs(const Napi::CallbackInfo&);
Napi::Value StartFsSetXattr(const Napi::CallbackInfo&);
Napi::Value Mount(const Napi::CallbackInfo&);
Napi::Value StartUmount(const Napi::CallbackInfo&);
Napi::Value Statx(const Napi::CallbackInfo&);
Napi::Value Fiemap(const Napi::CallbackInfo&);
Napi::Value CallPhase(const Napi::CallbackInfo&);
Napi::Value FsGetXattr(const Napi::CallbackInfo&);
Napi::Value KmsgOpen(const Napi::CallbackInfo&);
Napi::Value KmsgRead(const Napi::CallbackInfo&);
Napi::Value Tgkill(const Napi::CallbackInfo&);
Napi::Value PagemapScanHuge(const Napi::CallbackInfo&);
void InitNbd(Napi::Env, Napi::Object);
Napi::Function InitAio(Napi::Env);
void InitRdma(Napi::Env, Napi::Object);
void InitFreeze(Napi::Env, Napi::Object);

namespace {

void NoopHandler(int) {}

// The signal lib/ sends to a stuck op thread. Its handler does nothing and is
// installed without SA_RESTART, so an interruptible wait returns EINTR while an
// uninterruptible one does not notice: that difference is what we measure.
int InterruptSignal() { return SIGRTMIN + 4; }

void InstallInterruptHandler() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = NoopHandler;
  sigemptyset(&sa.sa_mask);
  sigaction(InterruptSignal(), &sa, nullptr);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallSignalHandlers();
  InstallInterruptHandler();
  exports.Set("Mapping", Mapping::Init(env));
  exports.Set("Ring", InitRing(env));
  exports.Set("startRead", Napi::Function::New(env, StartRead));
  exports.Set("startWrite", Napi::Function::New(env, StartWrite));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("vmsplice", Napi::Function::New(env, Vmsplice));
  exports.Set("startFtruncate", Napi::Function::New(env, StartFtruncate));
  exports.Set("startFallocate", Napi::Function::New(env, StartFallocate));
  exports.Set("startFiclone", Napi::Function::New(env, StartFiclone));
  exports.Set("startFicloneRange", Napi::Function::New(env, StartFicloneRange));
  exports.Set("startDedupeRange", Napi::Function::New(env, StartDedupeRange));
  exports.Set("startCopyFileRange", Napi::Function::New(env, StartCopyFileRange));
  exports.Set("startUnlink", Napi::Function::New(env, StartUnlink));
  exports.Set("startClose", Napi::Function::New(env, StartClose));
  exports.Set("startSyncfs", Napi::Function::New(env, StartSyncfs));
  exports.Set("startFsSetXattr", Napi::Function::New(env, StartFsSetXattr));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("startUmount", Napi::Function::New(env, StartUmount));
  exports.Set("statx", Napi::Function::New(env, Statx));
  exports.Set("fiemap", Napi::Function::New(env, Fiemap));
  exports.Set("fsGetXattr", Napi::Function::New(env, FsGetXattr));
  exports.Set("kmsgOpen", Napi::Function::New(env, KmsgOpen));
  exports.Set("kmsgRead", Napi::Function::New(env, KmsgRead));
  exports.Set("tgkill", Napi::Function::New(env, Tgkill));
  exports.Set("callPhase", Napi::Function::New(env, CallPhase));
  exports.Set("pagemapScanHuge", Napi::Function::New(env, PagemapScanHuge));
  InitNbd(env, exports);
  exports.Set("Aio", InitAio(env));
  InitRdma(env, exports);
  InitFreeze(env, exports);
  exports.Set("INTERRUPT_SIGNAL", Napi::Number::New(env, InterruptSignal()));
  return exports;
}

}  // namespace daxpin

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return daxpin::Init(env, exports); }

NODE_API_MODULE(daxpin, InitAddon)
