// Kernel message socket (PF_KEY, netlink) as an ObjectWrap: whole datagrams in via uv_poll, out via send(2).
#pragma once

#include "addon.h"

namespace natt {

class MessageSocket : public Napi::ObjectWrap<MessageSocket> {
 public:
  MessageSocket(const Napi::CallbackInfo& info);
  ~MessageSocket();
  // Stop polling and close the fd now (idempotent); used by close() and env teardown.
  void CloseNow();

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Drain();
  // Call a JS callback with one argument through MakeCallback; false when it threw (or the env is stopping).
  bool Deliver(Napi::FunctionReference& fn, napi_value arg);
  bool ReportError(int err, const char* syscall);

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value SetSockOpt(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  friend Napi::Object InitMessageSocket(Napi::Env env, NattAddon* addon);

  NattAddon* addon_ = nullptr;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;  // freed in uv_close's callback, never here
  Napi::FunctionReference onMessage_;
  Napi::FunctionReference onError_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace natt
