// PollHandle: uv_poll_t start/stop/close with an async env cleanup hook held until the close callback has run.
#include "poll_handle.h"

namespace natt {

PollHandle* PollHandle::Start(napi_env env, uv_loop_t* loop, int fd, int events, void* owner, OnEvent onEvent,
                              OnTeardown onTeardown, int* err) {
  auto* p = new PollHandle();
  p->owner_ = owner;
  p->onEvent_ = onEvent;
  p->onTeardown_ = onTeardown;
  int r = uv_poll_init(loop, &p->poll_, fd);
  if (r != 0) {
    delete p;  // a failed init leaves nothing in the loop
    *err = r;
    return nullptr;
  }
  p->poll_.data = p;
  if (napi_add_async_cleanup_hook(env, OnEnvTeardown, p, &p->hook_) != napi_ok) p->hook_ = nullptr;
  r = uv_poll_start(&p->poll_, events, OnPoll);
  if (r != 0) {
    *err = r;
    p->owner_ = nullptr;
    p->Close();  // initialised: the loop knows it, so it must go through uv_close
    return nullptr;
  }
  p->events_ = events;
  return p;
}

int PollHandle::SetEvents(int events) {
  if (closing_ || events == events_) return 0;
  int r = events == 0 ? uv_poll_stop(&poll_) : uv_poll_start(&poll_, events, OnPoll);
  if (r == 0) events_ = events;
  return r;
}

void PollHandle::Ref() {
  if (!closing_) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
}

void PollHandle::Unref() {
  if (!closing_) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
}

void PollHandle::Close() {
  if (closing_) return;
  closing_ = true;
  owner_ = nullptr;
  uv_poll_stop(&poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClosed);
}

void PollHandle::OnPoll(uv_poll_t* h, int status, int events) {
  auto* p = static_cast<PollHandle*>(h->data);
  if (p->owner_ != nullptr && p->onEvent_ != nullptr) p->onEvent_(p->owner_, status, events);
}

void PollHandle::OnClosed(uv_handle_t* h) {
  auto* p = static_cast<PollHandle*>(h->data);
  // Only now may the environment finish tearing down (and the addon be unloaded).
  if (p->hook_ != nullptr) napi_remove_async_cleanup_hook(p->hook_);
  delete p;
}

void PollHandle::OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* p = static_cast<PollHandle*>(arg);
  if (p->closing_) return;  // a close is already on its way; its callback removes the hook
  void* owner = p->owner_;
  OnTeardown teardown = p->onTeardown_;
  p->Close();
  if (owner != nullptr && teardown != nullptr) teardown(owner);  // the owner closes its fd; it must not touch p
}

}  // namespace natt
