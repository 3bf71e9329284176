// A uv_poll_t on an fd that closes safely: the env waits (async cleanup hook) until libuv has finished closing it.
//
// Why: a worker that exits with a handle still open tears its environment down and may unload the addon; if the
// uv_close callback were still pending it would run from unmapped code (SIGSEGV in uv__finish_close). PollHandle
// registers an async cleanup hook at start and removes it only from its own close callback, so the environment is not
// finished (and the addon not unloaded) before the close completes. Its memory is its own: the owner may be gone.
#pragma once

#include <node_api.h>
#include <uv.h>

namespace natt {

class PollHandle {
 public:
  // Readiness callback: status < 0 is a poll error; events has UV_READABLE / UV_WRITABLE.
  using OnEvent = void (*)(void* owner, int status, int events);
  // Called once when the environment is torn down with the handle still open (the owner closes its fd there).
  using OnTeardown = void (*)(void* owner);

  // Starts polling `fd` for `events`. On failure returns nullptr and sets *err to the (negative) libuv error.
  static PollHandle* Start(napi_env env, uv_loop_t* loop, int fd, int events, void* owner, OnEvent onEvent,
                           OnTeardown onTeardown, int* err);

  // Change the events polled for (UV_READABLE, UV_WRITABLE or both). Returns a negative libuv error on failure.
  int SetEvents(int events);
  int events() const { return events_; }
  void Ref();
  void Unref();
  // Stop, detach from the owner (no callback reaches it afterwards) and close; the handle frees itself once libuv
  // is done. The pointer must not be used after this.
  void Close();

 private:
  PollHandle() = default;
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnClosed(uv_handle_t* h);
  static void OnEnvTeardown(napi_async_cleanup_hook_handle hook, void* arg);

  uv_poll_t poll_;
  napi_async_cleanup_hook_handle hook_ = nullptr;
  void* owner_ = nullptr;
  OnEvent onEvent_ = nullptr;
  OnTeardown onTeardown_ = nullptr;
  int events_ = 0;
  bool closing_ = false;
};

}  // namespace natt
