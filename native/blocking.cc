#include "blocking.h"
#include "errors.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace daxpin {

namespace {

struct Completion {
  Napi::Promise::Deferred deferred;
  std::string syscall;
  CallResult result;
};

// While node tears its environment down (it exits with a call still in the kernel),
// JS can no longer run and every napi call that would run it fails; node-addon-api
// turns such a failure into a fatal error. Probe with raw napi calls first.
bool CanRunJs(napi_env env) {
  napi_value probe;
  if (napi_create_object(env, &probe) != napi_ok) return false;
  return napi_set_named_property(env, probe, "probe", probe) == napi_ok;
}

void Settle(Napi::Env env, Napi::Function, std::nullptr_t*, Completion* c) {
  // Nobody can observe the promise any more when JS cannot run: leave it unsettled.
  if (env != nullptr && CanRunJs(env)) {
    if (c->result.err != 0) {
      c->deferred.Reject(SystemError(env, c->result.err, c->syscall).Value());
    } else {
      Napi::Object v = Napi::Object::New(env);
      v.Set("ret", Napi::Number::New(env, static_cast<double>(c->result.ret)));
      v.Set("aux", Napi::Number::New(env, static_cast<double>(c->result.aux)));
      c->deferred.Resolve(v);
    }
  }
  delete c;
}

using SettleFn = Napi::TypedThreadSafeFunction<std::nullptr_t, Completion, Settle>;

// Node finalizes and frees every thread-safe function when its environment is torn
// down, even one a thread still holds: the thread must not call it after that.
struct Liveness {
  std::mutex mu;
  bool alive = true;
};

void Finalize(Napi::Env, std::shared_ptr<Liveness>* live, std::nullptr_t*) {
  {
    std::lock_guard<std::mutex> lock((*live)->mu);
    (*live)->alive = false;
  }
  delete live;
}

}  // namespace

Napi::Value StartBlocking(Napi::Env env, const std::string& syscall, std::function<CallResult()> fn) {
  auto* completion = new Completion{Napi::Promise::Deferred::New(env), syscall, {}};
  Napi::Promise promise = completion->deferred.Promise();
  auto live = std::make_shared<Liveness>();
  SettleFn tsfn = SettleFn::New(env, "daxpin.blocking", 0, 1, nullptr, Finalize, new std::shared_ptr<Liveness>(live));
  // A call stuck forever in the kernel must not keep the event loop alive by itself:
  // lib/ always holds a timer while it waits, and decides when to give up.
  tsfn.Unref(env);

  std::mutex mu;
  std::condition_variable cv;
  pid_t tid = 0;
  std::thread([&mu, &cv, &tid, fn, completion, tsfn, live]() mutable {
    {
      // Notify under the lock: once it is released the starter may return and
      // destroy mu and cv.
      std::lock_guard<std::mutex> lock(mu);
      tid = gettid();
      cv.notify_one();
    }
    // From here on the stack of the starting thread may be gone: use only copies.
    completion->result = fn();
    std::lock_guard<std::mutex> lock(live->mu);
    if (!live->alive) return;  // the process is exiting: nobody is left to settle the promise
    tsfn.BlockingCall(completion);
    tsfn.Release();
  }).detach();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&tid] { return tid != 0; });
  }

  Napi::Object call = Napi::Object::New(env);
  call.Set("tid", Napi::Number::New(env, tid));
  call.Set("promise", promise);
  return call;
}

}  // namespace daxpin
