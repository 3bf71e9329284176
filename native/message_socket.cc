// Kernel message socket implementation: socket/bind/setsockopt/send, bounded recv loop on readable, uv_close on close.
#include "message_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace natt {

// At most this many datagrams per readable wake, so one busy socket cannot starve the loop.
static constexpr int kMaxPerWake = 64;

Napi::Object InitMessageSocket(Napi::Env env, NattAddon* addon) {
  Napi::Function ctor = MessageSocket::DefineClass(
      env, "MessageSocket",
      {
          MessageSocket::InstanceAccessor("fd", &MessageSocket::Fd, nullptr),
          MessageSocket::InstanceMethod("bind", &MessageSocket::Bind),
          MessageSocket::InstanceMethod("setsockopt", &MessageSocket::SetSockOpt),
          MessageSocket::InstanceMethod("send", &MessageSocket::Send),
          MessageSocket::InstanceMethod("ref", &MessageSocket::Ref),
          MessageSocket::InstanceMethod("unref", &MessageSocket::Unref),
          MessageSocket::InstanceMethod("close", &MessageSocket::Close),
      });
  addon->messageSocketCtor = Napi::Persistent(ctor);
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("MessageSocket", ctor);
  return holder;
}

MessageSocket::MessageSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MessageSocket>(info) {
  Napi::Env env = info.Env();
  addon_ = env.GetInstanceData<NattAddon>();
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsFunction() || !info[4].IsFunction()) {
    ThrowType(env, "new MessageSocket(family, type, protocol, onMessage, onError)");
    return;
  }
  int family = info[0].As<Napi::Number>().Int32Value();
  int type = info[1].As<Napi::Number>().Int32Value();
  int protocol = info[2].As<Napi::Number>().Int32Value();
  if (family < 0) {  // the OS has no such family (constant -1)
    ThrowErrno(env, EAFNOSUPPORT, "socket");
    return;
  }
  fd_ = OpenSocket(family, type, protocol);
  if (fd_ < 0) {
    ThrowErrno(env, errno, "socket");
    return;
  }
  poll_ = new uv_poll_t;
  poll_->data = nullptr;
  int r = uv_poll_init(addon_->loop, poll_, fd_);
  if (r != 0) {
    delete poll_;  // a failed init leaves nothing in the loop
    poll_ = nullptr;
  } else {
    r = uv_poll_start(poll_, UV_READABLE, OnPoll);
    if (r != 0) {  // initialised: the loop knows the handle, so it must go through uv_close
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
  }
  if (r != 0) {
    close(fd_);
    fd_ = -1;
    ThrowErrno(env, -r, "uv_poll_start");
    return;
  }
  poll_->data = this;
  onMessage_ = Napi::Persistent(info[3].As<Napi::Function>());
  onError_ = Napi::Persistent(info[4].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "natt:MessageSocket");
  // Keep the JS object alive while the socket is open: it may still receive.
  Napi::ObjectWrap<MessageSocket>::Ref();
  addon_->live.insert(this);
}

MessageSocket::~MessageSocket() {
  CloseNow();
  delete async_;
}

void MessageSocket::CloseNow() {
  if (fd_ < 0) return;
  if (addon_) addon_->live.erase(this);
  if (poll_) {
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  close(fd_);
  fd_ = -1;
}

void MessageSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<MessageSocket*>(handle->data);
  if (self == nullptr) return;
  if (status < 0) {
    // The poll itself failed (e.g. the fd went bad): report once and stop polling; close() still cleans up.
    Napi::HandleScope scope(self->Env());
    uv_poll_stop(handle);
    self->ReportError(-status, "uv_poll");
    return;
  }
  if (events & UV_READABLE) self->Drain();
}

bool MessageSocket::Deliver(Napi::FunctionReference& fn, napi_value arg) {
  napi_env env = Env();
  napi_value result;
  napi_status st = napi_make_callback(env, *async_, Value(), fn.Value(), 1, &arg, &result);
  if (st == napi_ok) return true;
  // The callback threw: report it like any uncaught exception. (A terminating worker has none to report.)
  napi_value exc;
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
    napi_valuetype t;
    if (napi_typeof(env, exc, &t) == napi_ok && t != napi_undefined) napi_fatal_exception(env, exc);
  }
  return false;
}

bool MessageSocket::ReportError(int err, const char* syscall) {
  return Deliver(onError_, ErrnoError(Env(), err, syscall).Value());
}

void MessageSocket::Drain() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // A local handle on our JS object: it cannot be collected (and this deleted) while callbacks run, even after close().
  Napi::Object self = Value();
  (void)self;
  std::vector<uint8_t>& buf = addon_->recvBuf;
  for (int i = 0; i < kMaxPerWake && fd_ >= 0; i++) {
    ssize_t n;
    do {
#ifdef MSG_TRUNC
      n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
#else
      n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
#endif
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // ENOBUFS on netlink: the kernel dropped messages (overrun); the socket stays usable.
      int err = errno;
      if (!ReportError(err, "recv") || err != ENOBUFS) return;
      continue;
    }
    if (static_cast<size_t>(n) > buf.size()) {  // MSG_TRUNC gave the real length: never deliver half a message
      if (!ReportError(EMSGSIZE, "recv")) return;
      continue;
    }
    Napi::Buffer<uint8_t> msg = Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n));
    if (!Deliver(onMessage_, msg)) return;
  }
}

Napi::Value MessageSocket::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value MessageSocket::Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) return ThrowType(env, "sockaddr must be a Uint8Array");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "bind");
  Napi::Uint8Array sa = info[0].As<Napi::Uint8Array>();
  if (bind(fd_, reinterpret_cast<const sockaddr*>(sa.Data()), static_cast<socklen_t>(sa.ByteLength())) != 0)
    return ThrowErrno(env, errno, "bind");
  return env.Undefined();
}

Napi::Value MessageSocket::SetSockOpt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
    return ThrowType(env, "setsockopt(level, name, value) takes three numbers");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "setsockopt");
  int level = info[0].As<Napi::Number>().Int32Value();
  int name = info[1].As<Napi::Number>().Int32Value();
  int value = info[2].As<Napi::Number>().Int32Value();
  if (setsockopt(fd_, level, name, &value, sizeof value) != 0) return ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

Napi::Value MessageSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) return ThrowType(env, "msg must be a Uint8Array");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "send");
  Napi::Uint8Array msg = info[0].As<Napi::Uint8Array>();
  ssize_t n;
  do {
    n = send(fd_, msg.Data(), msg.ByteLength(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(env, errno, "send");
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value MessageSocket::Ref(const Napi::CallbackInfo& info) {
  if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value MessageSocket::Unref(const Napi::CallbackInfo& info) {
  if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value MessageSocket::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    CloseNow();
    Napi::ObjectWrap<MessageSocket>::Unref();  // the JS object may now be collected
  }
  return info.Env().Undefined();
}

}  // namespace natt
