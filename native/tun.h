// TUN device as an ObjectWrap: open + TUNSETIFF (+ TUNSETOFFLOAD), reads of several packets per wake into a JS-owned slab, write/writev batches.
#pragma once

#include "addon.h"
#include "poll_handle.h"

namespace natt {

class TunDevice : public Napi::ObjectWrap<TunDevice> {
 public:
  TunDevice(const Napi::CallbackInfo& info);
  ~TunDevice();

 private:
  static void OnEvent(void* owner, int status, int events);
  static void OnTeardown(void* owner);
  void Drain();
  // Start / stop watching readable and writable as reading_ and wantWritable_ say.
  int Rewatch();
  void CloseNow();
  // Drop the JS callbacks (after close: they must not keep anything alive). Not at env teardown: refs may be gone.
  void ReleaseCallbacks();
  // Call a JS callback through MakeCallback; false when it threw (or the env is stopping).
  bool Deliver(Napi::FunctionReference& fn, size_t argc, const napi_value* argv);
  bool ReportError(int err, const char* syscall);

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Oversize(const Napi::CallbackInfo& info);
  Napi::Value SetSlab(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WriteBatch(const Napi::CallbackInfo& info);
  Napi::Value WritevBatch(const Napi::CallbackInfo& info);
  Napi::Value SetOffload(const Napi::CallbackInfo& info);
  Napi::Value WaitWritable(const Napi::CallbackInfo& info);
  Napi::Value SetSndbuf(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  friend Napi::Object InitTun(Napi::Env env, NattAddon* addon);

  NattAddon* addon_ = nullptr;
  PollHandle* poll_ = nullptr;  // frees itself after uv_close; the env waits for that (worker-safe)
  int fd_ = -1;
  std::string name_;
  // The slab: JS-owned memory, held by references and re-read at every wake (an ArrayBuffer may be detached).
  Napi::Reference<Napi::Uint8Array> slab_;
  Napi::Reference<Napi::Uint32Array> lengths_;
  size_t slotSize_ = 0;
  bool hasSlab_ = false;
  bool paused_ = false;
  bool wantWritable_ = false;
  double oversize_ = 0;
  Napi::FunctionReference onPackets_;
  Napi::FunctionReference onWritable_;
  Napi::FunctionReference onError_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace natt
