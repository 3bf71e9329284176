// Kernel message socket (PF_KEY, netlink) as an ObjectWrap: whole datagrams in via uv_poll, out via send(2).
#pragma once

#include "addon.h"
#include "poll_handle.h"

namespace natt {

class MessageSocket : public Napi::ObjectWrap<MessageSocket>, public LiveSocket {
 public:
  MessageSocket(const Napi::CallbackInfo& info);
  ~MessageSocket();
  // Stop polling and close the fd now (idempotent); used by close(), the destructor (GC) and env teardown.
  void CloseNow() override;

 private:
  static void OnPoll(void* self, int status, int events);
  static void OnTeardown(void* self);
  void Drain();
  // Drop the JS callbacks (after close: they must not keep anything alive). Not at env teardown: refs may be gone.
  void ReleaseCallbacks();
  // Whether the JS object still exists (it is held weakly); if it was collected, close now and return false.
  bool Alive();
  // Call a JS callback with one argument through MakeCallback; false when it threw (or the env is stopping).
  bool Deliver(Napi::FunctionReference& fn, napi_value arg);
  bool ReportError(int err, const char* syscall);

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value SetSockOpt(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value WantWritable(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value RecvFrom(const Napi::CallbackInfo& info);
  Napi::Value AttachFilter(const Napi::CallbackInfo& info);
  Napi::Value GetSockOptBytes(const Napi::CallbackInfo& info);
  // recvmsg() with the source address and the kernel's receive time (SO_TIMESTAMPNS), for packet capture.
  void DrainFrom();

  friend Napi::Object InitMessageSocket(Napi::Env env, NattAddon* addon);

  NattAddon* addon_ = nullptr;
  int fd_ = -1;
  PollHandle* poll_ = nullptr;  // frees itself after uv_close; the env waits for that (worker-safe)
  Napi::FunctionReference onMessage_;
  Napi::FunctionReference onError_;
  Napi::FunctionReference onWritable_;  // optional: called once after WantWritable() when send() may succeed again
  Napi::AsyncContext* async_ = nullptr;
  // After recvFrom(true): onMessage(msg, sockaddr bytes, seconds, nanoseconds, original length) per datagram.
  bool withFrom_ = false;
};

}  // namespace natt
