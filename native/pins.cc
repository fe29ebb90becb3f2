// The pin methods: ways userspace makes the kernel hold references to the pages
// of a mapping. Each is a thin wrapper; when to release is decided in lib/.
#include "blocking.h"
#include "errors.h"
#include "mapping.h"

#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace daxpin {

namespace {

// Resolves args (mapping, offset, length) to a pointer; nullptr after throwing.
char* MappingRange(const Napi::CallbackInfo& info, size_t i, int64_t* length) {
  Mapping* m = Mapping::Unwrap(info[i]);
  if (m == nullptr) { ThrowTypeError(info.Env(), "argument " + std::to_string(i) + " must be a Mapping"); return nullptr; }
  int64_t offset;
  if (!ArgInt(info, i + 1, &offset) || !ArgInt(info, i + 2, length)) return nullptr;
  return m->Range(info.Env(), offset, *length);
}

}  // namespace

// startRead(fd, mapping, offset, length, fileOffset) -> { tid, promise }: pread() into the mapping.
Napi::Value StartRead(const Napi::CallbackInfo& info) {
  int64_t fd, length, fileOffset;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 4, &fileOffset)) return info.Env().Undefined();
  char* p = MappingRange(info, 1, &length);
  if (p == nullptr) return info.Env().Undefined();
  return StartBlocking(info.Env(), "pread", [fd, p, length, fileOffset] { return FromSyscall(pread(fd, p, length, fileOffset)); });
}

// startWrite(fd, mapping, offset, length, fileOffset) -> { tid, promise }: pwrite() from the mapping.
Napi::Value StartWrite(const Napi::CallbackInfo& info) {
  int64_t fd, length, fileOffset;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 4, &fileOffset)) return info.Env().Undefined();
  char* p = MappingRange(info, 1, &length);
  if (p == nullptr) return info.Env().Undefined();
  return StartBlocking(info.Env(), "pwrite", [fd, p, length, fileOffset] { return FromSyscall(pwrite(fd, p, length, fileOffset)); });
}

// pipe(capacityBytes) -> [readFd, writeFd], with F_SETPIPE_SZ so vmsplice never blocks.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t capacity;
  if (!ArgInt(info, 0, &capacity)) return env.Undefined();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ThrowSystemError(env, errno, "pipe2");
  if (fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity)) < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return ThrowSystemError(env, err, "fcntl(F_SETPIPE_SZ)");
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, fds[0]));
  a.Set(1u, Napi::Number::New(env, fds[1]));
  return a;
}

// vmsplice(pipeWriteFd, mapping, offset, length) -> bytes. No SPLICE_F_GIFT: the pipe
// takes references to the mapped pages. SPLICE_F_NONBLOCK: a full pipe is an error, not a hang.
Napi::Value Vmsplice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, length;
  if (!ArgInt(info, 0, &fd)) return env.Undefined();
  char* p = MappingRange(info, 1, &length);
  if (p == nullptr) return env.Undefined();
  struct iovec iov = {p, static_cast<size_t>(length)};
  ssize_t n = vmsplice(static_cast<int>(fd), &iov, 1, SPLICE_F_NONBLOCK);
  if (n < 0) return ThrowSystemError(env, errno, "vmsplice");
  return Napi::Number::New(env, static_cast<double>(n));
}

// A minimal io_uring: one submission at a time, enough to pin a buffer through
// an async read/write or IORING_REGISTER_BUFFERS.
class Ring : public Napi::ObjectWrap<Ring> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Ring", {
      InstanceMethod("registerBuffers", &Ring::RegisterBuffers),
      InstanceMethod("unregisterBuffers", &Ring::UnregisterBuffers),
      InstanceMethod("startIo", &Ring::StartIo),
      InstanceMethod("close", &Ring::Close),
    });
  }

  explicit Ring(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ring>(info) {
    Napi::Env env = info.Env();
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, 4, &p));
    if (fd_ < 0) { ThrowSystemError(env, errno, "io_uring_setup"); return; }
    sqLen_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cqLen_ = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) sqLen_ = cqLen_ = std::max(sqLen_, cqLen_);
    sq_ = static_cast<char*>(mmap(nullptr, sqLen_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQ_RING));
    if (sq_ == MAP_FAILED) { Fail(env, "mmap(sq ring)"); return; }
    cq_ = (p.features & IORING_FEAT_SINGLE_MMAP)
              ? sq_
              : static_cast<char*>(mmap(nullptr, cqLen_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_CQ_RING));
    if (cq_ == MAP_FAILED) { Fail(env, "mmap(cq ring)"); return; }
    sqesLen_ = p.sq_entries * sizeof(struct io_uring_sqe);
    sqes_ = static_cast<struct io_uring_sqe*>(mmap(nullptr, sqesLen_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, IORING_OFF_SQES));
    if (sqes_ == MAP_FAILED) { Fail(env, "mmap(sqes)"); return; }
    params_ = p;
  }

  ~Ring() { Release(); }

 private:
  void Fail(Napi::Env env, const char* what) {
    int err = errno;
    Release();
    ThrowSystemError(env, err, what);
  }

  void Release() {
    if (sqes_ != nullptr && sqes_ != MAP_FAILED) munmap(sqes_, sqesLen_);
    if (cq_ != nullptr && cq_ != MAP_FAILED && cq_ != sq_) munmap(cq_, cqLen_);
    if (sq_ != nullptr && sq_ != MAP_FAILED) munmap(sq_, sqLen_);
    sqes_ = nullptr;
    cq_ = sq_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Open(Napi::Env env) {
    if (fd_ < 0) { ThrowSystemError(env, EBADF, "io_uring (closed)"); return false; }
    return true;
  }

  // registerBuffers(mapping, offset, length): IORING_REGISTER_BUFFERS takes a
  // FOLL_LONGTERM pin on the pages; the kernel decides whether that is allowed.
  Napi::Value RegisterBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    int64_t length;
    char* p = MappingRange(info, 0, &length);
    if (p == nullptr) return env.Undefined();
    struct iovec iov = {p, static_cast<size_t>(length)};
    if (syscall(__NR_io_uring_register, fd_, IORING_REGISTER_BUFFERS, &iov, 1) < 0)
      return ThrowSystemError(env, errno, "io_uring_register");
    return env.Undefined();
  }

  Napi::Value UnregisterBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    if (syscall(__NR_io_uring_register, fd_, IORING_UNREGISTER_BUFFERS, nullptr, 0) < 0)
      return ThrowSystemError(env, errno, "io_uring_register");
    return env.Undefined();
  }

  // startIo(op: 'read'|'write', fd, mapping, offset, length, fileOffset) -> { tid, promise }
  // Submits one IORING_OP_READ/WRITE with a plain (unregistered) buffer and waits
  // for its completion on a thread of its own; the promise carries the cqe result.
  Napi::Value StartIo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Open(env)) return env.Undefined();
    std::string op;
    int64_t fd, length, fileOffset;
    if (!ArgString(info, 0, &op) || !ArgInt(info, 1, &fd)) return env.Undefined();
    if (op != "read" && op != "write") return ThrowTypeError(env, "op must be read or write");
    char* p = MappingRange(info, 2, &length);
    if (p == nullptr || !ArgInt(info, 5, &fileOffset)) return env.Undefined();

    unsigned* sqTail = reinterpret_cast<unsigned*>(sq_ + params_.sq_off.tail);
    unsigned* sqMask = reinterpret_cast<unsigned*>(sq_ + params_.sq_off.ring_mask);
    unsigned* sqArray = reinterpret_cast<unsigned*>(sq_ + params_.sq_off.array);
    unsigned tail = *sqTail;
    unsigned index = tail & *sqMask;
    struct io_uring_sqe* sqe = &sqes_[index];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = op == "read" ? IORING_OP_READ : IORING_OP_WRITE;
    sqe->fd = static_cast<int>(fd);
    sqe->addr = reinterpret_cast<uint64_t>(p);
    sqe->len = static_cast<uint32_t>(length);
    sqe->off = static_cast<uint64_t>(fileOffset);
    sqArray[index] = index;
    __atomic_store_n(sqTail, tail + 1, __ATOMIC_RELEASE);

    int ringFd = fd_;
    char* cq = cq_;
    struct io_uring_params params = params_;
    return StartBlocking(env, op == "read" ? "io_uring(read)" : "io_uring(write)", [ringFd, cq, params] {
      long r;
      do {
        r = syscall(__NR_io_uring_enter, ringFd, 1, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
      } while (r < 0 && errno == EINTR);
      if (r < 0) return FromSyscall(r);
      unsigned* cqHead = reinterpret_cast<unsigned*>(cq + params.cq_off.head);
      unsigned* cqTail = reinterpret_cast<unsigned*>(cq + params.cq_off.tail);
      unsigned* cqMask = reinterpret_cast<unsigned*>(cq + params.cq_off.ring_mask);
      struct io_uring_cqe* cqes = reinterpret_cast<struct io_uring_cqe*>(cq + params.cq_off.cqes);
      unsigned head = *cqHead;
      // Completion is guaranteed by GETEVENTS with min_complete 1.
      while (head == __atomic_load_n(cqTail, __ATOMIC_ACQUIRE)) {}
      int res = cqes[head & *cqMask].res;
      __atomic_store_n(cqHead, head + 1, __ATOMIC_RELEASE);
      CallResult c;
      if (res < 0) c.err = -res; else c.ret = res;
      return c;
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  int fd_ = -1;
  char* sq_ = nullptr;
  char* cq_ = nullptr;
  struct io_uring_sqe* sqes_ = nullptr;
  size_t sqLen_ = 0, cqLen_ = 0, sqesLen_ = 0;
  struct io_uring_params params_ = {};
};

Napi::Function InitRing(Napi::Env env) { return Ring::Init(env); }

}  // namespace daxpin
