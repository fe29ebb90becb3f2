// RDMA memory registration on the mapping: ibv_reg_mr takes a FOLL_LONGTERM pin that
// lasts until ibv_dereg_mr (or, with IBV_ACCESS_ON_DEMAND, no pin: the device faults
// pages in through the mmu notifier). libibverbs is opened with dlopen at run time,
// never linked: the addon must load on machines without it.
#include "errors.h"
#include "range.h"

#include <dlfcn.h>

#if __has_include(<infiniband/verbs.h>)
#include <infiniband/verbs.h>
#define DAXPIN_HAVE_VERBS 1
#endif

namespace daxpin {

#ifdef DAXPIN_HAVE_VERBS

namespace {

// The few exported libibverbs functions daxpin calls, resolved once.
struct Verbs {
  struct ibv_device** (*getDeviceList)(int*);
  void (*freeDeviceList)(struct ibv_device**);
  const char* (*getDeviceName)(struct ibv_device*);
  struct ibv_context* (*openDevice)(struct ibv_device*);
  int (*closeDevice)(struct ibv_context*);
  struct ibv_pd* (*allocPd)(struct ibv_context*);
  int (*deallocPd)(struct ibv_pd*);
  struct ibv_mr* (*regMr)(struct ibv_pd*, void*, size_t, int);
  int (*deregMr)(struct ibv_mr*);
};

// nullptr with *why set when libibverbs or one of its functions is missing.
const Verbs* LoadVerbs(std::string* why) {
  static Verbs verbs;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    void* lib = dlopen("libibverbs.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      error = dlerror();
    } else {
      const struct { void** slot; const char* name; } syms[] = {
          {reinterpret_cast<void**>(&verbs.getDeviceList), "ibv_get_device_list"},
          {reinterpret_cast<void**>(&verbs.freeDeviceList), "ibv_free_device_list"},
          {reinterpret_cast<void**>(&verbs.getDeviceName), "ibv_get_device_name"},
          {reinterpret_cast<void**>(&verbs.openDevice), "ibv_open_device"},
          {reinterpret_cast<void**>(&verbs.closeDevice), "ibv_close_device"},
          {reinterpret_cast<void**>(&verbs.allocPd), "ibv_alloc_pd"},
          {reinterpret_cast<void**>(&verbs.deallocPd), "ibv_dealloc_pd"},
          {reinterpret_cast<void**>(&verbs.regMr), "ibv_reg_mr"},
          {reinterpret_cast<void**>(&verbs.deregMr), "ibv_dereg_mr"},
      };
      for (const auto& s : syms) {
        *s.slot = dlsym(lib, s.name);
        if (*s.slot == nullptr && error.empty()) error = std::string("libibverbs.so.1 has no ") + s.name;
      }
    }
  }
  if (!error.empty()) { *why = error; return nullptr; }
  return &verbs;
}

}  // namespace

// new RdmaDevice(name) opens the named device (e.g. 'rxe0') and a protection domain.
class RdmaDevice : public Napi::ObjectWrap<RdmaDevice> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RdmaDevice", {
      InstanceMethod("odpCaps", &RdmaDevice::OdpCaps),
      InstanceMethod("regMr", &RdmaDevice::RegMr),
      InstanceMethod("deregMr", &RdmaDevice::DeregMr),
      InstanceMethod("close", &RdmaDevice::Close),
    });
  }

  explicit RdmaDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RdmaDevice>(info) {
    Napi::Env env = info.Env();
    std::string name, why;
    if (!ArgString(info, 0, &name)) return;
    verbs_ = LoadVerbs(&why);
    if (verbs_ == nullptr) { Napi::Error::New(env, why).ThrowAsJavaScriptException(); return; }
    int n = 0;
    struct ibv_device** list = verbs_->getDeviceList(&n);
    if (list == nullptr) { ThrowSystemError(env, errno, "ibv_get_device_list"); return; }
    for (int i = 0; i < n && ctx_ == nullptr; i++) {
      if (name == verbs_->getDeviceName(list[i])) {
        ctx_ = verbs_->openDevice(list[i]);
        if (ctx_ == nullptr) { int err = errno; verbs_->freeDeviceList(list); ThrowSystemError(env, err, "ibv_open_device"); return; }
      }
    }
    verbs_->freeDeviceList(list);
    if (ctx_ == nullptr) { ThrowSystemError(env, ENODEV, "ibv_get_device_list(" + name + ")"); return; }
    pd_ = verbs_->allocPd(ctx_);
    if (pd_ == nullptr) { int err = errno; Release(); ThrowSystemError(env, err, "ibv_alloc_pd"); }
  }

  ~RdmaDevice() { Release(); }

 private:
  void Release() {
    if (mr_ != nullptr) verbs_->deregMr(mr_);
    if (pd_ != nullptr) verbs_->deallocPd(pd_);
    if (ctx_ != nullptr) verbs_->closeDevice(ctx_);
    mr_ = nullptr;
    pd_ = nullptr;
    ctx_ = nullptr;
  }

  bool Open(Napi::Env env) {
    if (pd_ == nullptr) { ThrowSystemError(env, EBADF, "ibv (closed device)"); return false; }
    return true;
  }

  // odpCaps() -> { general, rc } (IBV_ODP_* bits) from the provider's query_device_ex,
  // or null when the provider has none. (ibv_query_device_ex is an inline of the header
  // over the context's op table; calling the op directly links nothing.)
  Napi::Value OdpCaps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    struct verbs_context* vctx = verbs_get_ctx_op(ctx_, query_device_ex);
    if (vctx == nullptr) return env.Null();
    struct ibv_device_attr_ex attr;
    memset(&attr, 0, sizeof attr);
    int err = vctx->query_device_ex(ctx_, nullptr, &attr, sizeof attr);
    if (err != 0) return ThrowSystemError(env, err, "ibv_query_device_ex");
    Napi::Object o = Napi::Object::New(env);
    o.Set("general", Napi::Number::New(env, static_cast<double>(attr.odp_caps.general_caps)));
    o.Set("rc", Napi::Number::New(env, attr.odp_caps.per_transport_caps.rc_odp_caps));
    return o;
  }

  // regMr(mapping, offset, length, onDemand): a writable registration, as an RDMA
  // target buffer is; the kernel decides whether it may pin the pages.
  Napi::Value RegMr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    int64_t length;
    char* p = MappingRangeArg(info, 0, &length);
    if (p == nullptr) return env.Undefined();
    if (info.Length() < 4 || !info[3].IsBoolean()) return ThrowTypeError(env, "argument 3 must be a boolean");
    if (mr_ != nullptr) return ThrowSystemError(env, EBUSY, "ibv_reg_mr (already registered)");
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    if (info[3].As<Napi::Boolean>().Value()) access |= IBV_ACCESS_ON_DEMAND;
    mr_ = verbs_->regMr(pd_, p, static_cast<size_t>(length), access);
    if (mr_ == nullptr) return ThrowSystemError(env, errno, "ibv_reg_mr");
    return env.Undefined();
  }

  Napi::Value DeregMr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (mr_ == nullptr) return env.Undefined();
    int err = verbs_->deregMr(mr_);
    mr_ = nullptr;
    if (err != 0) return ThrowSystemError(env, err, "ibv_dereg_mr");
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  const Verbs* verbs_ = nullptr;
  struct ibv_context* ctx_ = nullptr;
  struct ibv_pd* pd_ = nullptr;
  struct ibv_mr* mr_ = nullptr;
};

void InitRdma(Napi::Env env, Napi::Object exports) {
  exports.Set("RdmaDevice", RdmaDevice::Init(env));
}

#else

// Built without the verbs headers (libibverbs-dev): no RdmaDevice, lib/ says why.
void InitRdma(Napi::Env env, Napi::Object exports) {}

#endif

}  // namespace daxpin
