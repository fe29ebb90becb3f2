// The NBD peer's kernel side: a socketpair, the configuration ioctls on /dev/nbdN
// and NBD_DO_IT (which blocks for the device's whole life, on a thread of its own).
// What to answer and when is decided in lib/engine/nbd.ts.
#include "blocking.h"
#include "errors.h"

#include <csignal>
#include <fcntl.h>
#include <linux/nbd.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace daxpin {

// socketpair() -> [fd, fd]: AF_UNIX stream sockets, close-on-exec.
Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return ThrowSystemError(env, errno, "socketpair");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Napi::Number::New(env, fds[0]));
  a.Set(1u, Napi::Number::New(env, fds[1]));
  return a;
}

// nbdConfigure(deviceFd, socketFd, blockSize, blocks, timeoutSeconds): hands the kernel
// its end of the socket and sizes the device. EBUSY: another task has set it up.
Napi::Value NbdConfigure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dev, sock, blockSize, blocks, timeout;
  if (!ArgInt(info, 0, &dev) || !ArgInt(info, 1, &sock) || !ArgInt(info, 2, &blockSize) || !ArgInt(info, 3, &blocks) ||
      !ArgInt(info, 4, &timeout))
    return env.Undefined();
  int fd = static_cast<int>(dev);
  if (ioctl(fd, NBD_SET_SOCK, static_cast<unsigned long>(sock)) < 0) return ThrowSystemError(env, errno, "ioctl(NBD_SET_SOCK)");
  const struct { unsigned long req; unsigned long arg; const char* name; } steps[] = {
      {NBD_SET_BLKSIZE, static_cast<unsigned long>(blockSize), "ioctl(NBD_SET_BLKSIZE)"},
      {NBD_SET_SIZE_BLOCKS, static_cast<unsigned long>(blocks), "ioctl(NBD_SET_SIZE_BLOCKS)"},
      {NBD_SET_TIMEOUT, static_cast<unsigned long>(timeout), "ioctl(NBD_SET_TIMEOUT)"},
  };
  for (const auto& s : steps) {
    if (ioctl(fd, s.req, s.arg) < 0) {
      int err = errno;
      ioctl(fd, NBD_CLEAR_SOCK);
      return ThrowSystemError(env, err, s.name);
    }
  }
  return env.Undefined();
}

// startNbdDoIt(deviceFd) -> { tid, promise }: NBD_DO_IT serves the device until its
// socket closes or it is disconnected. Its wait is interruptible and a signal would
// shut the connection down, so the thread blocks every signal while it waits.
Napi::Value StartNbdDoIt(const Napi::CallbackInfo& info) {
  int64_t dev;
  if (!ArgInt(info, 0, &dev)) return info.Env().Undefined();
  int fd = static_cast<int>(dev);
  return StartBlocking(info.Env(), "ioctl(NBD_DO_IT)", [fd] {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    CallResult c = FromSyscall(ioctl(fd, NBD_DO_IT));
    ioctl(fd, NBD_CLEAR_QUE);
    ioctl(fd, NBD_CLEAR_SOCK);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return c;
  });
}

// nbdDisconnect(deviceFd): NBD_DISCONNECT; the kernel sends NBD_CMD_DISC and NBD_DO_IT returns.
Napi::Value NbdDisconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dev;
  if (!ArgInt(info, 0, &dev)) return env.Undefined();
  if (ioctl(static_cast<int>(dev), NBD_DISCONNECT) < 0) return ThrowSystemError(env, errno, "ioctl(NBD_DISCONNECT)");
  return env.Undefined();
}

void InitNbd(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, Socketpair));
  exports.Set("nbdConfigure", Napi::Function::New(env, NbdConfigure));
  exports.Set("startNbdDoIt", Napi::Function::New(env, StartNbdDoIt));
  exports.Set("nbdDisconnect", Napi::Function::New(env, NbdDisconnect));
}

}  // namespace daxpin
