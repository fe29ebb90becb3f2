#include "mapping.h"
#include "errors.h"

#include <csetjmp>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

namespace daxpin {

namespace {

// volatile: the handler reads it asynchronously; without it the compiler may
// drop the store made before the guarded copy.
thread_local sigjmp_buf* volatile busJump = nullptr;
struct sigaction previousBus;

void OnSigbus(int sig, siginfo_t* si, void* uc) {
  if (busJump != nullptr) siglongjmp(*busJump, 1);
  // Not ours: behave as if we were never installed.
  sigaction(SIGBUS, &previousBus, nullptr);
  raise(sig);
}

// Runs `access` with SIGBUS turned into a `false` result. The asm barriers keep the
// compiler from moving the accesses out of the guarded region.
template <typename F>
bool Guarded(F access) {
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) != 0) {
    busJump = nullptr;
    return false;
  }
  busJump = &jump;
  asm volatile("" ::: "memory");
  access();
  asm volatile("" ::: "memory");
  busJump = nullptr;
  return true;
}

bool GuardedCopy(void* dst, const void* src, size_t n) {
  return Guarded([=] { memcpy(dst, src, n); });
}

// Reads one byte every `stride` bytes: a read fault on each page, no copy.
bool GuardedTouch(const char* p, size_t n, size_t stride) {
  return Guarded([=] {
    for (size_t i = 0; i < n; i += stride) (void)*static_cast<const volatile char*>(p + i);
  });
}

int SharingFlags(const std::string& sharing) {
  if (sharing == "shared") return MAP_SHARED;
  if (sharing == "private") return MAP_PRIVATE;
  if (sharing == "sync") return MAP_SHARED_VALIDATE | MAP_SYNC;
  return -1;
}

}  // namespace

void InstallSignalHandlers() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnSigbus;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previousBus);
}

static Napi::FunctionReference* constructor = nullptr;

Napi::Function Mapping::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "Mapping", {
    InstanceMethod("read", &Mapping::Read),
    InstanceMethod("write", &Mapping::Write),
    InstanceMethod("touch", &Mapping::Touch),
    InstanceMethod("unmap", &Mapping::Unmap),
    InstanceAccessor("address", &Mapping::GetAddress, nullptr),
    InstanceAccessor("length", &Mapping::GetLength, nullptr),
    InstanceAccessor("mapped", &Mapping::GetMapped, nullptr),
  });
  constructor = new Napi::FunctionReference(Napi::Persistent(f));
  return f;
}

Mapping* Mapping::Unwrap(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(constructor->Value())) return nullptr;
  return Napi::ObjectWrap<Mapping>::Unwrap(v.As<Napi::Object>());
}

// new Mapping(fd, length, offset, sharing, align)
// `align` places the mapping at an address aligned to it (2 MiB for PMD faults):
// reserve length+align of address space, then MAP_FIXED the file inside it.
Mapping::Mapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Mapping>(info) {
  Napi::Env env = info.Env();
  int64_t fd, length, offset, align;
  std::string sharing;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &length) || !ArgInt(info, 2, &offset) ||
      !ArgString(info, 3, &sharing) || !ArgInt(info, 4, &align)) return;
  int flags = SharingFlags(sharing);
  if (flags < 0) { ThrowTypeError(env, "sharing must be shared, private or sync"); return; }
  if (length <= 0 || align <= 0 || (align & (align - 1)) != 0) {
    ThrowTypeError(env, "length must be > 0 and align a power of two");
    return;
  }
  reservationLength_ = static_cast<size_t>(length + align);
  reservation_ = mmap(nullptr, reservationLength_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reservation_ == MAP_FAILED) { reservation_ = nullptr; ThrowSystemError(env, errno, "mmap"); return; }
  uintptr_t aligned = (reinterpret_cast<uintptr_t>(reservation_) + align - 1) & ~static_cast<uintptr_t>(align - 1);
  void* p = mmap(reinterpret_cast<void*>(aligned), static_cast<size_t>(length), PROT_READ | PROT_WRITE,
                 flags | MAP_FIXED, static_cast<int>(fd), static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    int err = errno;
    munmap(reservation_, reservationLength_);
    reservation_ = nullptr;
    ThrowSystemError(env, err, "mmap");
    return;
  }
  addr_ = static_cast<char*>(p);
  length_ = static_cast<size_t>(length);
}

Mapping::~Mapping() {
  if (reservation_ != nullptr) munmap(reservation_, reservationLength_);
}

char* Mapping::Range(Napi::Env env, int64_t offset, int64_t length) {
  if (addr_ == nullptr) { ThrowSystemError(env, EFAULT, "mapping (unmapped)"); return nullptr; }
  if (offset < 0 || length < 0 || static_cast<size_t>(offset + length) > length_) {
    ThrowTypeError(env, "range outside the mapping");
    return nullptr;
  }
  return addr_ + offset;
}

// read(offset, length) -> { sigbus: boolean, data: Buffer }
Napi::Value Mapping::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset, length;
  if (!ArgInt(info, 0, &offset) || !ArgInt(info, 1, &length)) return env.Undefined();
  char* p = Range(env, offset, length);
  if (p == nullptr) return env.Undefined();
  Napi::Buffer<char> data = Napi::Buffer<char>::New(env, static_cast<size_t>(length));
  bool ok = GuardedCopy(data.Data(), p, static_cast<size_t>(length));
  Napi::Object r = Napi::Object::New(env);
  r.Set("sigbus", Napi::Boolean::New(env, !ok));
  r.Set("data", data);
  return r;
}

// touch(offset, length, stride) -> { sigbus: boolean }: reads one byte per stride.
Napi::Value Mapping::Touch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset, length, stride;
  if (!ArgInt(info, 0, &offset) || !ArgInt(info, 1, &length) || !ArgInt(info, 2, &stride)) return env.Undefined();
  if (stride <= 0) return ThrowTypeError(env, "stride must be > 0");
  char* p = Range(env, offset, length);
  if (p == nullptr) return env.Undefined();
  bool ok = GuardedTouch(p, static_cast<size_t>(length), static_cast<size_t>(stride));
  Napi::Object r = Napi::Object::New(env);
  r.Set("sigbus", Napi::Boolean::New(env, !ok));
  return r;
}

// write(offset, buffer) -> { sigbus: boolean }
Napi::Value Mapping::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset;
  if (!ArgInt(info, 0, &offset)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBuffer()) return ThrowTypeError(env, "argument 1 must be a Buffer");
  Napi::Buffer<char> src = info[1].As<Napi::Buffer<char>>();
  char* p = Range(env, offset, static_cast<int64_t>(src.Length()));
  if (p == nullptr) return env.Undefined();
  bool ok = GuardedCopy(p, src.Data(), src.Length());
  Napi::Object r = Napi::Object::New(env);
  r.Set("sigbus", Napi::Boolean::New(env, !ok));
  return r;
}

Napi::Value Mapping::Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (reservation_ == nullptr) return env.Undefined();
  if (munmap(reservation_, reservationLength_) != 0) return ThrowSystemError(env, errno, "munmap");
  reservation_ = nullptr;
  addr_ = nullptr;
  return env.Undefined();
}

Napi::Value Mapping::GetAddress(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(addr_)));
}
Napi::Value Mapping::GetLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}
Napi::Value Mapping::GetMapped(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), addr_ != nullptr);
}

}  // namespace daxpin
