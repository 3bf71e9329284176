// Kernel message socket implementation: socket/bind/setsockopt/send, bounded recv loop on readable, uv_close on close or GC.
// In recvFrom mode (packet capture) each datagram also brings its sockaddr, its kernel timestamp and its full length.
#include "message_socket.h"

#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#if defined(__linux__)
#include <linux/filter.h>
#endif

namespace natt {

// At most this many datagrams per readable wake, so one busy socket cannot starve the loop.
static constexpr int kMaxPerWake = 64;

// The first three arguments as int32s (setsockopt's and getsockoptBytes' level, name, value/length); false if not numbers.
static bool ThreeInts(const Napi::CallbackInfo& info, int* a, int* b, int* c) {
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) return false;
  *a = info[0].As<Napi::Number>().Int32Value();
  *b = info[1].As<Napi::Number>().Int32Value();
  *c = info[2].As<Napi::Number>().Int32Value();
  return true;
}

Napi::Object InitMessageSocket(Napi::Env env, NattAddon* addon) {
  Napi::Function ctor = MessageSocket::DefineClass(
      env, "MessageSocket",
      {
          MessageSocket::InstanceAccessor("fd", &MessageSocket::Fd, nullptr),
          MessageSocket::InstanceMethod("bind", &MessageSocket::Bind),
          MessageSocket::InstanceMethod("setsockopt", &MessageSocket::SetSockOpt),
          MessageSocket::InstanceMethod("send", &MessageSocket::Send),
          MessageSocket::InstanceMethod("wantWritable", &MessageSocket::WantWritable),
          MessageSocket::InstanceMethod("ref", &MessageSocket::Ref),
          MessageSocket::InstanceMethod("unref", &MessageSocket::Unref),
          MessageSocket::InstanceMethod("close", &MessageSocket::Close),
          MessageSocket::InstanceMethod("recvFrom", &MessageSocket::RecvFrom),
          MessageSocket::InstanceMethod("attachFilter", &MessageSocket::AttachFilter),
          MessageSocket::InstanceMethod("getsockoptBytes", &MessageSocket::GetSockOptBytes),
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
      !info[3].IsFunction() || !info[4].IsFunction() || (info.Length() > 5 && !info[5].IsFunction() && !info[5].IsUndefined())) {
    ThrowType(env, "new MessageSocket(family, type, protocol, onMessage, onError[, onWritable])");
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
  int r = 0;
  poll_ = PollHandle::Start(env, addon_->loop, fd_, UV_READABLE, this, OnPoll, OnTeardown, &r);
  if (poll_ == nullptr) {
    close(fd_);
    fd_ = -1;
    ThrowErrno(env, -r, "uv_poll_start");
    return;
  }
  onMessage_ = Napi::Persistent(info[3].As<Napi::Function>());
  onError_ = Napi::Persistent(info[4].As<Napi::Function>());
  if (info.Length() > 5 && info[5].IsFunction()) onWritable_ = Napi::Persistent(info[5].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "natt:MessageSocket");
  // No self-reference: a socket JS drops without close() is collected, and its destructor closes the fd (through
  // PollHandle, worker-safe). Whoever wants it open holds it; the JS clients close theirs when they are collected.
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
    poll_->Close();
    poll_ = nullptr;
  }
  close(fd_);
  fd_ = -1;
}

void MessageSocket::ReleaseCallbacks() {
  // Once closed, nothing must keep the JS callbacks (and what they reach) alive: these references are GC roots.
  onMessage_.Reset();
  onError_.Reset();
  onWritable_.Reset();
}

bool MessageSocket::Alive() {
  // The JS object is only weakly held: when it has been collected but its finalizer has not run yet, stop here.
  if (!Value().IsEmpty()) return true;
  CloseNow();
  ReleaseCallbacks();
  return false;
}

void MessageSocket::OnTeardown(void* owner) {
  auto* self = static_cast<MessageSocket*>(owner);
  self->poll_ = nullptr;  // PollHandle closed itself
  self->CloseNow();
}

void MessageSocket::OnPoll(void* owner, int status, int events) {
  auto* self = static_cast<MessageSocket*>(owner);
  Napi::HandleScope scope(self->Env());
  if (!self->Alive()) return;
  Napi::Object keep = self->Value();  // alive through the callbacks, even if one closes the socket
  (void)keep;
  if (status < 0) {
    // The poll itself failed (e.g. the fd went bad): report once and stop polling; close() still cleans up.
    self->poll_->SetEvents(0);
    self->ReportError(-status, "uv_poll");
    return;
  }
  if ((events & UV_WRITABLE) && self->poll_ != nullptr) {
    self->poll_->SetEvents(UV_READABLE);
    if (!self->onWritable_.IsEmpty() && !self->Deliver(self->onWritable_, self->Env().Undefined())) return;
  }
  if ((events & UV_READABLE) && self->fd_ >= 0) {
    if (self->withFrom_)
      self->DrainFrom();
    else
      self->Drain();
  }
}

bool MessageSocket::Deliver(Napi::FunctionReference& fn, napi_value arg) {
  if (fn.IsEmpty()) return false;  // released by close()
  return CallJs(Env(), *async_, Value(), fn.Value(), 1, &arg);
}

bool MessageSocket::ReportError(int err, const char* syscall) {
  return Deliver(onError_, ErrnoError(Env(), err, syscall).Value());
}

void MessageSocket::Drain() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // A local handle on our JS object: it cannot be collected (and this deleted) while callbacks run, even after close().
  if (!Alive()) return;
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

void MessageSocket::DrainFrom() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (!Alive()) return;
  Napi::Object self = Value();
  (void)self;
  std::vector<uint8_t>& buf = addon_->recvBuf;
  for (int i = 0; i < kMaxPerWake && fd_ >= 0 && withFrom_; i++) {
    sockaddr_storage from;
    std::memset(&from, 0, sizeof from);
    alignas(cmsghdr) char control[128];
    iovec iov{buf.data(), buf.size()};
    msghdr mh;
    std::memset(&mh, 0, sizeof mh);
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n;
    do {
#ifdef MSG_TRUNC
      n = recvmsg(fd_, &mh, MSG_DONTWAIT | MSG_TRUNC);
#else
      n = recvmsg(fd_, &mh, MSG_DONTWAIT);
#endif
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      int err = errno;
      if (!ReportError(err, "recvmsg") || err != ENOBUFS) return;
      continue;
    }
    double sec = 0, nsec = 0;
    bool stamped = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
#ifdef SCM_TIMESTAMPNS
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        sec = static_cast<double>(ts.tv_sec);
        nsec = static_cast<double>(ts.tv_nsec);
        stamped = true;
      }
#endif
    }
    if (!stamped) {  // no timestamp option on this socket (or OS): the time of reading
      timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      sec = static_cast<double>(ts.tv_sec);
      nsec = static_cast<double>(ts.tv_nsec);
    }
    size_t stored = static_cast<size_t>(n) > buf.size() ? buf.size() : static_cast<size_t>(n);
    napi_value args[5] = {
        Napi::Buffer<uint8_t>::Copy(env, buf.data(), stored),
        Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&from), mh.msg_namelen),
        Napi::Number::New(env, sec),
        Napi::Number::New(env, nsec),
        Napi::Number::New(env, static_cast<double>(n)),
    };
    if (onMessage_.IsEmpty() || !CallJs(env, *async_, Value(), onMessage_.Value(), 5, args)) return;
  }
}

Napi::Value MessageSocket::RecvFrom(const Napi::CallbackInfo& info) {
  withFrom_ = info.Length() > 0 && info[0].ToBoolean().Value();
  return info.Env().Undefined();
}

Napi::Value MessageSocket::AttachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) return ThrowType(env, "attachFilter(program: Uint8Array of struct sock_filter)");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "setsockopt");
#if defined(__linux__)
  Napi::Uint8Array prog = info[0].As<Napi::Uint8Array>();
  if (prog.ByteLength() == 0 || prog.ByteLength() % sizeof(sock_filter) != 0 || prog.ByteLength() / sizeof(sock_filter) > 0xffff)
    return ThrowType(env, "the filter program must be a whole number of 8-byte instructions");
  std::vector<sock_filter> code(prog.ByteLength() / sizeof(sock_filter));
  std::memcpy(code.data(), prog.Data(), prog.ByteLength());
  sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(code.size());
  fprog.filter = code.data();
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) != 0) return ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
#else
  return ThrowErrno(env, ENOPROTOOPT, "setsockopt");
#endif
}

Napi::Value MessageSocket::GetSockOptBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int level, name, length;
  if (!ThreeInts(info, &level, &name, &length)) return ThrowType(env, "getsockoptBytes(level, name, length) takes three numbers");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "getsockopt");
  if (length < 0 || length > 4096) return ThrowType(env, "length must be 0..4096");
  std::vector<uint8_t> out(static_cast<size_t>(length));
  socklen_t len = static_cast<socklen_t>(length);
  if (getsockopt(fd_, level, name, out.data(), &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), len);
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
  int level, name, value;
  if (!ThreeInts(info, &level, &name, &value)) return ThrowType(env, "setsockopt(level, name, value) takes three numbers");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "setsockopt");
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
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(env, -1);  // full: not sent
  if (n < 0) return ThrowErrno(env, errno, "send");
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value MessageSocket::WantWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0 || poll_ == nullptr) return ThrowErrno(env, EBADF, "uv_poll_start");
  int r = poll_->SetEvents(UV_READABLE | UV_WRITABLE);
  if (r != 0) return ThrowErrno(env, -r, "uv_poll_start");
  return env.Undefined();
}

Napi::Value MessageSocket::Ref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Ref();
  return info.Env().Undefined();
}

Napi::Value MessageSocket::Unref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Unref();
  return info.Env().Undefined();
}

Napi::Value MessageSocket::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  ReleaseCallbacks();
  return info.Env().Undefined();
}

}  // namespace natt
