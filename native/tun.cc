// TUN device implementation: /dev/net/tun + TUNSETIFF, bounded readv burst per wake into the slab, write(2) per packet.
#include "tun.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform.h"  // <linux/if_tun.h>, <net/if.h>

namespace natt {

// At most this many slots (and so read(2) calls) per wake: one busy device cannot starve the loop.
static constexpr size_t kMaxSlots = 1024;
// A slot holds one packet; larger than any TUN packet (64 KiB plus a virtio-net header) is pointless.
static constexpr size_t kMaxSlotSize = 128 * 1024;

Napi::Object InitTun(Napi::Env env, NattAddon* addon) {
  Napi::Function ctor = TunDevice::DefineClass(
      env, "Tun",
      {
          TunDevice::InstanceAccessor("fd", &TunDevice::Fd, nullptr),
          TunDevice::InstanceAccessor("name", &TunDevice::Name, nullptr),
          TunDevice::InstanceAccessor("oversize", &TunDevice::Oversize, nullptr),
          TunDevice::InstanceMethod("setSlab", &TunDevice::SetSlab),
          TunDevice::InstanceMethod("pause", &TunDevice::Pause),
          TunDevice::InstanceMethod("resume", &TunDevice::Resume),
          TunDevice::InstanceMethod("write", &TunDevice::Write),
          TunDevice::InstanceMethod("writeBatch", &TunDevice::WriteBatch),
          TunDevice::InstanceMethod("writevBatch", &TunDevice::WritevBatch),
          TunDevice::InstanceMethod("setOffload", &TunDevice::SetOffload),
          TunDevice::InstanceMethod("waitWritable", &TunDevice::WaitWritable),
          TunDevice::InstanceMethod("setSndbuf", &TunDevice::SetSndbuf),
          TunDevice::InstanceMethod("ref", &TunDevice::Ref),
          TunDevice::InstanceMethod("unref", &TunDevice::Unref),
          TunDevice::InstanceMethod("close", &TunDevice::Close),
      });
  addon->tunCtor = Napi::Persistent(ctor);
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("Tun", ctor);
  return holder;
}

TunDevice::TunDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunDevice>(info) {
  Napi::Env env = info.Env();
  addon_ = env.GetInstanceData<NattAddon>();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsFunction() ||
      !info[3].IsFunction() || !info[4].IsFunction()) {
    ThrowType(env, "new Tun(name, flags, onPackets, onWritable, onError)");
    return;
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  double flags = info[1].As<Napi::Number>().DoubleValue();
#if defined(__linux__)
  // The kernel reads at most IFNAMSIZ-1 bytes and stops at a NUL: refuse what it would silently cut.
  if (name.size() >= IFNAMSIZ || std::strlen(name.c_str()) != name.size() || !(flags >= 0 && flags <= 0xffff) ||
      flags != static_cast<double>(static_cast<int>(flags))) {
    ThrowErrno(env, EINVAL, "ioctl");
    return;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open");
    return;
  }
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = static_cast<short>(static_cast<int>(flags));
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "ioctl");
    return;
  }
  name_.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  int err = 0;
  poll_ = PollHandle::Start(env, addon_->loop, fd, 0, this, OnEvent, OnTeardown, &err);  // watching nothing yet
  if (poll_ == nullptr) {
    close(fd);
    ThrowErrno(env, -err, "uv_poll_init");
    return;
  }
  fd_ = fd;
  onPackets_ = Napi::Persistent(info[2].As<Napi::Function>());
  onWritable_ = Napi::Persistent(info[3].As<Napi::Function>());
  onError_ = Napi::Persistent(info[4].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "natt:Tun");
  // No self-reference: a device JS drops without close() is collected, and its destructor closes the fd (the TUN
  // device goes with it) through PollHandle, worker-safe. The JS Tun holds it while it is open and ref'd.
#else
  (void)name;
  (void)flags;
  ThrowErrno(env, ENOTSUP, "open");
#endif
}

TunDevice::~TunDevice() {
  CloseNow();
  delete async_;
}

void TunDevice::CloseNow() {
  if (poll_ == nullptr) return;
  poll_->Close();  // the handle frees itself once uv_close is done
  poll_ = nullptr;
  close(fd_);
  fd_ = -1;
  hasSlab_ = false;
}

void TunDevice::OnTeardown(void* owner) {
  // The env is going away and the PollHandle closed itself; no JS may run now.
  auto* self = static_cast<TunDevice*>(owner);
  self->poll_ = nullptr;
  if (self->fd_ >= 0) close(self->fd_);
  self->fd_ = -1;
  self->hasSlab_ = false;
}

int TunDevice::Rewatch() {
  if (poll_ == nullptr) return 0;
  int events = (hasSlab_ && !paused_ ? UV_READABLE : 0) | (wantWritable_ ? UV_WRITABLE : 0);
  return poll_->SetEvents(events);
}

void TunDevice::ReleaseCallbacks() {
  // Once closed, nothing must keep the JS callbacks (and what they reach) alive: these references are GC roots.
  onPackets_.Reset();
  onWritable_.Reset();
  onError_.Reset();
}

bool TunDevice::Deliver(Napi::FunctionReference& fn, size_t argc, const napi_value* argv) {
  if (fn.IsEmpty()) return false;  // released by close()
  return CallJs(Env(), *async_, Value(), fn.Value(), argc, argv);
}

bool TunDevice::ReportError(int err, const char* syscall) {
  napi_value e = ErrnoError(Env(), err, syscall).Value();
  return Deliver(onError_, 1, &e);
}

void TunDevice::OnEvent(void* owner, int status, int events) {
  auto* self = static_cast<TunDevice*>(owner);
  Napi::HandleScope scope(self->Env());
  // A local handle on our JS object: it cannot be collected (and this deleted) while callbacks run, even after close().
  Napi::Object keep = self->Value();
  if (keep.IsEmpty()) {
    // Collected, its finalizer not run yet (the object is held weakly): close now.
    self->CloseNow();
    self->slab_.Reset();
    self->lengths_.Reset();
    self->ReleaseCallbacks();
    return;
  }
  if (status < 0) {
    // The poll itself failed: stop watching and report once; close() still cleans up.
    self->paused_ = true;
    self->wantWritable_ = false;
    self->Rewatch();
    self->ReportError(-status, "uv_poll");
    return;
  }
  if ((events & UV_WRITABLE) && self->wantWritable_) {
    self->wantWritable_ = false;  // one notification per waitWritable()
    self->Rewatch();
    if (!self->Deliver(self->onWritable_, 0, nullptr)) return;
  }
  if ((events & UV_READABLE) && self->poll_ != nullptr) self->Drain();
}

void TunDevice::Drain() {
  if (!hasSlab_ || paused_) return;
  Napi::Env env = Env();
  Napi::Uint8Array slab = slab_.Value();
  Napi::Uint32Array lengths = lengths_.Value();
  // Re-read every wake: JS may have transferred (detached) the ArrayBuffer since setSlab().
  uint8_t* base = slab.Data();
  uint32_t* lens = lengths.Data();
  size_t slots = std::min(slab.ByteLength() / slotSize_, lengths.ElementLength());
  slots = std::min(slots, kMaxSlots);
  if (base == nullptr || lens == nullptr || slots == 0) {
    paused_ = true;
    Rewatch();
    ReportError(EFAULT, "read");  // the slab is gone: nothing to read into
    return;
  }
  std::vector<uint8_t>& scratch = addon_->recvBuf;
  size_t count = 0;
  int err = 0;
  // At most `slots` read(2) calls per wake; a packet longer than a slot spills into the scratch buffer and is dropped
  // whole (counted), never delivered cut.
  for (size_t attempt = 0; attempt < slots && count < slots; attempt++) {
    struct iovec iov[2];
    iov[0].iov_base = base + count * slotSize_;
    iov[0].iov_len = slotSize_;
    iov[1].iov_base = scratch.data();
    iov[1].iov_len = scratch.size();
    ssize_t n;
    do {
      n = readv(fd_, iov, 2);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (static_cast<size_t>(n) > slotSize_) {
      oversize_++;
      continue;
    }
    lens[count++] = static_cast<uint32_t>(n);
  }
  if (count > 0) {
    napi_value arg = Napi::Number::New(env, static_cast<double>(count));
    if (!Deliver(onPackets_, 1, &arg)) return;
  }
  if (err != 0 && poll_ != nullptr) {
    // A read error other than EAGAIN would repeat at every wake: stop reading, say why; resume() tries again.
    paused_ = true;
    Rewatch();
    ReportError(err, "read");
  }
}

Napi::Value TunDevice::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value TunDevice::Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

Napi::Value TunDevice::Oversize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), oversize_); }

Napi::Value TunDevice::SetSlab(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsTypedArray())
    return ThrowType(env, "setSlab(slab: Uint8Array, slotSize: number, lengths: Uint32Array)");
  Napi::TypedArray s = info[0].As<Napi::TypedArray>();
  Napi::TypedArray l = info[2].As<Napi::TypedArray>();
  if (s.TypedArrayType() != napi_uint8_array || l.TypedArrayType() != napi_uint32_array)
    return ThrowType(env, "setSlab(slab: Uint8Array, slotSize: number, lengths: Uint32Array)");
  double slot = info[1].As<Napi::Number>().DoubleValue();
  if (!(slot >= 1 && slot <= kMaxSlotSize) || slot != static_cast<double>(static_cast<size_t>(slot))) {
    Napi::RangeError::New(env, "slotSize must be an integer from 1 to 131072").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array slab = s.As<Napi::Uint8Array>();
  Napi::Uint32Array lengths = l.As<Napi::Uint32Array>();
  if (slab.ByteLength() < static_cast<size_t>(slot) || lengths.ElementLength() == 0) {
    Napi::RangeError::New(env, "the slab must hold at least one slot and lengths one entry").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (poll_ == nullptr) return ThrowErrno(env, EBADF, "read");
  slab_ = Napi::Persistent(slab);
  lengths_ = Napi::Persistent(lengths);
  slotSize_ = static_cast<size_t>(slot);
  hasSlab_ = true;
  int r = Rewatch();
  if (r != 0) return ThrowErrno(env, -r, "uv_poll_start");
  size_t slots = std::min(std::min(slab.ByteLength() / slotSize_, lengths.ElementLength()), kMaxSlots);
  return Napi::Number::New(env, static_cast<double>(slots));
}

Napi::Value TunDevice::Pause(const Napi::CallbackInfo& info) {
  paused_ = true;
  Rewatch();
  return info.Env().Undefined();
}

Napi::Value TunDevice::Resume(const Napi::CallbackInfo& info) {
  paused_ = false;
  int r = Rewatch();
  if (r != 0) return ThrowErrno(info.Env(), -r, "uv_poll_start");
  return info.Env().Undefined();
}

// write(2) one packet; 0 or the errno (EAGAIN: not written, wait for writability).
static int WriteOne(int fd, const uint8_t* p, size_t len) {
  ssize_t n;
  do {
    n = write(fd, p, len);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? (errno == EWOULDBLOCK ? EAGAIN : errno) : 0;
}

Napi::Value TunDevice::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    return ThrowType(env, "write(packet: Uint8Array[, offset, length])");
  Napi::Uint8Array buf = info[0].As<Napi::Uint8Array>();
  size_t total = buf.ByteLength();
  double off = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  double len = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : total - off;
  if (!(off >= 0 && len >= 0 && off + len <= static_cast<double>(total))) {
    Napi::RangeError::New(env, "offset and length must lie inside the packet buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (fd_ < 0) return Napi::Number::New(env, EBADF);
  return Napi::Number::New(env, WriteOne(fd_, buf.Data() + static_cast<size_t>(off), static_cast<size_t>(len)));
}

Napi::Value TunDevice::WriteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "writeBatch(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, start, count, status: Int32Array)";
  if (info.Length() < 6 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsTypedArray() ||
      !info[3].IsNumber() || !info[4].IsNumber() || !info[5].IsTypedArray())
    return ThrowType(env, usage);
  if (info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[5].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    return ThrowType(env, usage);
  Napi::Uint8Array slab = info[0].As<Napi::Uint8Array>();
  Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
  Napi::Uint32Array lengths = info[2].As<Napi::Uint32Array>();
  Napi::Int32Array status = info[5].As<Napi::Int32Array>();
  double startD = info[3].As<Napi::Number>().DoubleValue();
  double countD = info[4].As<Napi::Number>().DoubleValue();
  size_t limit = std::min(std::min(offsets.ElementLength(), lengths.ElementLength()), status.ElementLength());
  if (!(startD >= 0 && countD >= 0 && startD + countD <= static_cast<double>(limit)) ||
      startD != static_cast<double>(static_cast<size_t>(startD)) || countD != static_cast<double>(static_cast<size_t>(countD))) {
    Napi::RangeError::New(env, "start and count must lie inside offsets, lengths and status").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t start = static_cast<size_t>(startD);
  size_t end = start + static_cast<size_t>(countD);
  const uint8_t* base = slab.Data();
  size_t size = slab.ByteLength();
  const uint32_t* offs = offsets.Data();
  const uint32_t* lens = lengths.Data();
  int32_t* st = status.Data();
  size_t i = start;
  for (; i < end; i++) {
    size_t o = offs[i];
    size_t n = lens[i];
    int r;
    if (fd_ < 0)
      r = EBADF;
    else if (o > size || n > size - o)
      r = EFAULT;  // outside the slab: never read past it
    else
      r = WriteOne(fd_, base + o, n);
    if (r == EAGAIN) break;  // not consumed: the caller waits for writability and retries from here
    st[i] = r;
  }
  return Napi::Number::New(env, static_cast<double>(i - start));
}

// writevBatch(headers, headerLength, slab, pieceOffsets, pieceLengths, pieceCounts, start, count, status): write w
// (start <= w < start+count) is ONE writev(2) of headers[w*headerLength, +headerLength) (a virtio-net header, for a
// device opened with IFF_VNET_HDR) followed by its pieceCounts[w] pieces of the slab, taken in order (the pieces of
// the writes before `start` are skipped). status[w] gets 0 or the errno (EFAULT: a piece outside the slab). Stops at
// the first EAGAIN; returns how many writes were consumed.
Napi::Value TunDevice::WritevBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "writevBatch(headers: Uint8Array, headerLength, slab: Uint8Array, pieceOffsets: Uint32Array, pieceLengths: Uint32Array, "
      "pieceCounts: Uint32Array, start, count, status: Int32Array)";
  if (info.Length() < 9 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsTypedArray() ||
      !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsNumber() || !info[7].IsNumber() || !info[8].IsTypedArray())
    return ThrowType(env, usage);
  if (info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[4].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[5].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      info[8].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    return ThrowType(env, usage);
  Napi::Uint8Array hdrs = info[0].As<Napi::Uint8Array>();
  Napi::Uint8Array slab = info[2].As<Napi::Uint8Array>();
  Napi::Uint32Array pOff = info[3].As<Napi::Uint32Array>();
  Napi::Uint32Array pLen = info[4].As<Napi::Uint32Array>();
  Napi::Uint32Array pCnt = info[5].As<Napi::Uint32Array>();
  Napi::Int32Array status = info[8].As<Napi::Int32Array>();
  double hlD = info[1].As<Napi::Number>().DoubleValue();
  double startD = info[6].As<Napi::Number>().DoubleValue();
  double countD = info[7].As<Napi::Number>().DoubleValue();
  size_t writes = std::min(pCnt.ElementLength(), status.ElementLength());
  if (!(hlD >= 0 && hlD <= 64) || hlD != static_cast<double>(static_cast<size_t>(hlD)) || !(startD >= 0 && countD >= 0) ||
      startD + countD > static_cast<double>(writes) || startD != static_cast<double>(static_cast<size_t>(startD)) ||
      countD != static_cast<double>(static_cast<size_t>(countD))) {
    Napi::RangeError::New(env, "headerLength must be 0..64 and start and count lie inside pieceCounts and status").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t hl = static_cast<size_t>(hlD);
  size_t start = static_cast<size_t>(startD);
  size_t end = start + static_cast<size_t>(countD);
  const uint32_t* cnt = pCnt.Data();
  const uint32_t* offs = pOff.Data();
  const uint32_t* lens = pLen.Data();
  size_t pieces = std::min(pOff.ElementLength(), pLen.ElementLength());
  const uint8_t* base = slab.Data();
  size_t size = slab.ByteLength();
  int32_t* st = status.Data();
  size_t p = 0;
  for (size_t w = 0; w < start; w++) p += cnt[w];
  constexpr size_t kMaxIov = 128;  // a coalesced write has at most 64 pieces; more is refused (EINVAL)
  struct iovec iov[kMaxIov + 1];
  size_t w = start;
  for (; w < end; w++) {
    size_t n = cnt[w];
    int r = 0;
    if (fd_ < 0) r = EBADF;
    else if (n > kMaxIov || p + n > pieces || (w + 1) * hl > hdrs.ByteLength()) r = EINVAL;
    else {
      size_t k = 0;
      if (hl > 0) {
        iov[k].iov_base = const_cast<uint8_t*>(hdrs.Data()) + w * hl;
        iov[k++].iov_len = hl;
      }
      for (size_t q = 0; q < n && r == 0; q++) {
        size_t o = offs[p + q], l = lens[p + q];
        if (o > size || l > size - o) r = EFAULT;  // outside the slab: never read past it
        iov[k].iov_base = const_cast<uint8_t*>(base) + o;
        iov[k++].iov_len = l;
      }
      if (r == 0) {
        ssize_t got;
        do {
          got = writev(fd_, iov, static_cast<int>(k));
        } while (got < 0 && errno == EINTR);
        r = got < 0 ? (errno == EWOULDBLOCK ? EAGAIN : errno) : 0;
      }
    }
    if (r == EAGAIN) break;  // not consumed: the caller waits for writability and retries from here
    st[w] = r;
    p += n;
  }
  return Napi::Number::New(env, static_cast<double>(w - start));
}

// setOffload(flags) → 0 or the errno: ioctl(TUNSETOFFLOAD) with TUN_F_* flags (the offloads the device may hand
// natt: with TSO/USO, packets read can be up to 64 KiB with a virtio-net header saying how to cut them).
Napi::Value TunDevice::SetOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "setOffload(flags: number)");
  if (fd_ < 0) return Napi::Number::New(env, EBADF);
#if defined(__linux__)
  unsigned long flags = static_cast<unsigned long>(info[0].As<Napi::Number>().Uint32Value());
  if (ioctl(fd_, TUNSETOFFLOAD, flags) != 0) return Napi::Number::New(env, errno);
  return Napi::Number::New(env, 0);
#else
  return Napi::Number::New(env, ENOTSUP);
#endif
}

Napi::Value TunDevice::WaitWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (poll_ == nullptr) return ThrowErrno(env, EBADF, "uv_poll_start");
  wantWritable_ = true;
  int r = Rewatch();
  if (r != 0) {
    wantWritable_ = false;
    return ThrowErrno(env, -r, "uv_poll_start");
  }
  return env.Undefined();
}

Napi::Value TunDevice::SetSndbuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "setSndbuf(bytes: number)");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "ioctl");
#if defined(__linux__)
  int v = info[0].As<Napi::Number>().Int32Value();
  if (ioctl(fd_, TUNSETSNDBUF, &v) != 0) return ThrowErrno(env, errno, "ioctl");
  return env.Undefined();
#else
  return ThrowErrno(env, ENOTSUP, "ioctl");
#endif
}

Napi::Value TunDevice::Ref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Ref();
  return info.Env().Undefined();
}

Napi::Value TunDevice::Unref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Unref();
  return info.Env().Undefined();
}

Napi::Value TunDevice::Close(const Napi::CallbackInfo& info) {
  CloseNow();
  slab_.Reset();
  lengths_.Reset();
  ReleaseCallbacks();
  return info.Env().Undefined();
}

}  // namespace natt
