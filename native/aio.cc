// Legacy AIO (io_setup/io_submit/io_getevents as raw syscalls: no libaio): one
// O_DIRECT read or write with its buffer in the mapping, the way databases submit I/O.
#include "blocking.h"
#include "errors.h"
#include "range.h"

#include <cstring>
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace daxpin {

class Aio : public Napi::ObjectWrap<Aio> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Aio", {
      InstanceMethod("startIo", &Aio::StartIo),
      InstanceMethod("close", &Aio::Close),
    });
  }

  explicit Aio(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Aio>(info) {
    if (syscall(__NR_io_setup, 1, &ctx_) < 0) ThrowSystemError(info.Env(), errno, "io_setup");
  }

  // A context JS dropped without close(): its request has settled or never will.
  ~Aio() {}

 private:
  // startIo(op: 'read'|'write', fd, mapping, offset, length, fileOffset) -> { tid, promise }
  // io_submit and io_getevents both run on the call's thread: where the file does not
  // support async direct I/O, io_submit itself waits for the completion.
  Napi::Value StartIo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ctx_ == 0) return ThrowSystemError(env, EINVAL, "io_submit (closed context)");
    std::string op;
    int64_t fd, length, fileOffset;
    if (!ArgString(info, 0, &op) || !ArgInt(info, 1, &fd)) return env.Undefined();
    if (op != "read" && op != "write") return ThrowTypeError(env, "op must be read or write");
    char* p = MappingRangeArg(info, 2, &length);
    if (p == nullptr || !ArgInt(info, 5, &fileOffset)) return env.Undefined();
    aio_context_t ctx = ctx_;
    bool reading = op == "read";
    return StartBlocking(env, reading ? "io_submit(read)" : "io_submit(write)", [ctx, reading, fd, p, length, fileOffset] {
      struct iocb cb;
      memset(&cb, 0, sizeof cb);
      cb.aio_lio_opcode = reading ? IOCB_CMD_PREAD : IOCB_CMD_PWRITE;
      cb.aio_fildes = static_cast<uint32_t>(fd);
      cb.aio_buf = reinterpret_cast<uint64_t>(p);
      cb.aio_nbytes = static_cast<uint64_t>(length);
      cb.aio_offset = fileOffset;
      struct iocb* cbs[1] = {&cb};
      long r = syscall(__NR_io_submit, ctx, 1, cbs);
      if (r < 0) return FromSyscall(r);
      if (r == 0) { CallResult c; c.err = EAGAIN; return c; }
      struct io_event ev;
      do {
        r = syscall(__NR_io_getevents, ctx, 1, 1, &ev, nullptr);
      } while (r < 0 && errno == EINTR);
      if (r < 0) return FromSyscall(r);
      CallResult c;
      if (ev.res < 0) c.err = static_cast<int>(-ev.res); else c.ret = static_cast<long>(ev.res);
      return c;
    });
  }

  // close() -> { tid, promise }: io_destroy waits for a request still in flight
  // (one whose peer never answered), so it runs on a thread of its own too.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    aio_context_t ctx = ctx_;
    ctx_ = 0;
    return StartBlocking(info.Env(), "io_destroy", [ctx] { return ctx == 0 ? CallResult{} : FromSyscall(syscall(__NR_io_destroy, ctx)); });
  }

  aio_context_t ctx_ = 0;
};

Napi::Function InitAio(Napi::Env env) { return Aio::Init(env); }

}  // namespace daxpin
