// Node-style system errors: every failing syscall surfaces as an Error with
// `code` ('EOPNOTSUPP'), `errno` (negative, as Node does) and `syscall`.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace daxpin {

inline std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : ("E" + std::to_string(err));
}

inline Napi::Error SystemError(Napi::Env env, int err, const std::string& syscall) {
  std::string code = ErrnoName(err);
  Napi::Error e = Napi::Error::New(env, code + ": " + strerror(err) + ", " + syscall);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

// Throws (as a pending JS exception) and returns an undefined value for `return`.
inline Napi::Value ThrowSystemError(Napi::Env env, int err, const std::string& syscall) {
  SystemError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}

inline Napi::Value ThrowTypeError(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Argument helpers: a wrong type is a programming error in lib/, reported as TypeError.
inline bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    ThrowTypeError(info.Env(), "argument " + std::to_string(i) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

inline bool ArgString(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (i >= info.Length() || !info[i].IsString()) {
    ThrowTypeError(info.Env(), "argument " + std::to_string(i) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

}  // namespace daxpin
