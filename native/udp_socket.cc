// UdpSocket implementation: local-address reporting on, batched receive into the slab, sendmsg / sendmmsg, uv_close.
#include "udp_socket.h"

#include "platform.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace natt {

static constexpr size_t kRecord = 64;       // bytes of metadata per datagram (both arrays)
static constexpr size_t kCtrl = 128;        // control buffer per datagram: one pktinfo cmsg, generously
static constexpr size_t kMaxSlots = 1024;   // per wake
static constexpr size_t kBatchChunk = 64;   // sendmmsg messages per system call
static constexpr size_t kBatchIovs = 1024;  // datagrams (iovecs) per system call, GSO messages included
static constexpr size_t kGsoMaxSegs = 64;   // datagrams per GSO message (the kernel's UDP_MAX_SEGMENTS is 64 or more)
static constexpr size_t kGsoMaxBytes = 65535 - 8 - 40;  // payload of one GSO message: one IP packet's worth

enum : int32_t { kTruncated = 1, kLocalKnown = 2 };

Napi::Object InitUdpSocket(Napi::Env env, NattAddon* addon) {
  Napi::Function ctor = UdpSocket::DefineClass(
      env, "UdpSocket",
      {
          UdpSocket::InstanceAccessor("fd", &UdpSocket::Fd, nullptr),
          UdpSocket::InstanceAccessor("localAddressKnown", &UdpSocket::LocalAddressKnown, nullptr),
          UdpSocket::InstanceMethod("send", &UdpSocket::Send),
          UdpSocket::InstanceMethod("sendBatch", &UdpSocket::SendBatch),
          UdpSocket::InstanceMethod("wantWritable", &UdpSocket::WantWritable),
          UdpSocket::InstanceMethod("setOffload", &UdpSocket::SetOffload),
          UdpSocket::InstanceAccessor("offload", &UdpSocket::Offload, nullptr),
          UdpSocket::InstanceMethod("ref", &UdpSocket::Ref),
          UdpSocket::InstanceMethod("unref", &UdpSocket::Unref),
          UdpSocket::InstanceMethod("close", &UdpSocket::Close),
      });
  addon->udpSocketCtor = Napi::Persistent(ctor);
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("UdpSocket", ctor);
  return holder;
}

static uint8_t* TypedData(const Napi::TypedArray& t, size_t* len) {
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  if (ab.Data() == nullptr) {
    *len = 0;
    return nullptr;
  }
  *len = t.ByteLength();
  return static_cast<uint8_t*>(ab.Data()) + t.ByteOffset();
}

// Ask the kernel to say, per datagram, which local address it arrived on. false where it cannot.
static bool EnableLocalAddress(int fd, int family) {
  int on = 1;
  if (family == 6) {
#ifdef IPV6_RECVPKTINFO
    return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on) == 0;
#else
    return false;
#endif
  }
#if defined(IP_PKTINFO) && !defined(__FreeBSD__)
#if defined(IP_RECVPKTINFO)
  return setsockopt(fd, IPPROTO_IP, IP_RECVPKTINFO, &on, sizeof on) == 0;  // NetBSD, macOS
#else
  return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) == 0;  // Linux
#endif
#elif defined(IP_RECVDSTADDR)
  return setsockopt(fd, IPPROTO_IP, IP_RECVDSTADDR, &on, sizeof on) == 0;  // FreeBSD
#else
  return false;
#endif
}

UdpSocket::UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info) {
  Napi::Env env = info.Env();
  addon_ = env.GetInstanceData<NattAddon>();
  // new UdpSocket(fd, family, slab, slotSize, meta, onRead, onError, onWritable)
  if (info.Length() < 8 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsNumber() ||
      !info[4].IsTypedArray() || !info[5].IsFunction() || !info[6].IsFunction() || !info[7].IsFunction()) {
    ThrowType(env, "new UdpSocket(fd, family, slab, slotSize, meta, onRead, onError, onWritable)");
    return;
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int family = info[1].As<Napi::Number>().Int32Value();
  Napi::TypedArray slab = info[2].As<Napi::TypedArray>();
  int64_t slotSize = info[3].As<Napi::Number>().Int64Value();
  Napi::TypedArray meta = info[4].As<Napi::TypedArray>();
  if (fd < 0 || (family != 4 && family != 6)) {
    ThrowType(env, "fd must be an open descriptor and family 4 or 6");
    return;
  }
  if (slotSize < 1 || slotSize > 65536 || meta.ByteLength() < kRecord || (meta.ByteOffset() % 4) != 0) {
    ThrowType(env, "slotSize must be 1..65536 and meta hold at least one 64-byte record");
    return;
  }
  size_t slots = std::min(meta.ByteLength() / kRecord, kMaxSlots);
  if (slab.ByteLength() < slots * static_cast<size_t>(slotSize)) {
    ThrowType(env, "slab must hold one slotSize slot per metadata record");
    return;
  }
  family_ = family;
  slotSize_ = static_cast<size_t>(slotSize);
  slots_ = slots;
  pktinfo_ = EnableLocalAddress(fd, family);
  int r = 0;
  poll_ = PollHandle::Start(env, addon_->loop, fd, UV_READABLE, this, OnPoll, OnTeardown, &r);
  if (poll_ == nullptr) {
    ThrowErrno(env, -r, "uv_poll_start");  // the fd stays the caller's
    return;
  }
  fd_ = fd;  // ours from here on
  names_.resize(slots_);
  iovs_.resize(slots_);
  ctrl_.resize(slots_ * kCtrl);
#if defined(__linux__)
  msgs_.resize(slots_);
#endif
  slab_ = Napi::Reference<Napi::TypedArray>::New(slab, 1);
  meta_ = Napi::Reference<Napi::TypedArray>::New(meta, 1);
  onRead_ = Napi::Persistent(info[5].As<Napi::Function>());
  onError_ = Napi::Persistent(info[6].As<Napi::Function>());
  onWritable_ = Napi::Persistent(info[7].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "natt:UdpSocket");
  Napi::ObjectWrap<UdpSocket>::Ref();  // alive while open: it may still receive
  addon_->live.insert(this);
}

UdpSocket::~UdpSocket() {
  CloseNow();
  delete async_;
}

void UdpSocket::CloseNow() {
  if (fd_ < 0) return;
  if (addon_) addon_->live.erase(this);
  if (poll_) {
    poll_->Close();
    poll_ = nullptr;
  }
  close(fd_);
  fd_ = -1;
}

void UdpSocket::OnTeardown(void* owner) {
  auto* self = static_cast<UdpSocket*>(owner);
  self->poll_ = nullptr;  // PollHandle closed itself
  self->CloseNow();
}

bool UdpSocket::ReportError(int err, const char* syscall) {
  napi_value e = ErrnoError(Env(), err, syscall).Value();
  return CallJs(Env(), *async_, Value(), onError_.Value(), 1, &e);
}

void UdpSocket::OnPoll(void* owner, int status, int events) {
  auto* self = static_cast<UdpSocket*>(owner);
  Napi::HandleScope scope(self->Env());
  Napi::Object keep = self->Value();  // alive through the callbacks, even if one closes the socket
  (void)keep;
  if (status < 0) {
    self->poll_->SetEvents(0);
    self->ReportError(-status, "uv_poll");
    return;
  }
  if ((events & UV_WRITABLE) && self->poll_ != nullptr) {
    self->poll_->SetEvents(UV_READABLE);
    if (!CallJs(self->Env(), *self->async_, self->Value(), self->onWritable_.Value(), 0, nullptr)) return;
  }
  if ((events & UV_READABLE) && self->fd_ >= 0) self->Drain();
}

size_t UdpSocket::Views(uint8_t** slab, uint8_t** meta) {
  size_t slabLen = 0, metaLen = 0;
  *slab = TypedData(slab_.Value(), &slabLen);
  *meta = TypedData(meta_.Value(), &metaLen);
  if (*slab == nullptr || *meta == nullptr) return 0;
  return std::min({slots_, metaLen / kRecord, slabLen / slotSize_});
}

static void Put32(uint8_t* rec, int word, int32_t v) { std::memcpy(rec + word * 4, &v, 4); }

// Fill one metadata record from a received message's name, control data, length and flags.
static void Record(uint8_t* rec, const sockaddr_storage& name, msghdr& mh, size_t len, int flags) {
  std::memset(rec, 0, kRecord);
  int32_t f = (flags & MSG_TRUNC) ? kTruncated : 0;
  Put32(rec, 0, static_cast<int32_t>(len));
  if (name.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&name);
    Put32(rec, 2, 6);
    Put32(rec, 3, ntohs(sin6->sin6_port));
    Put32(rec, 4, static_cast<int32_t>(sin6->sin6_scope_id));
    std::memcpy(rec + 32, &sin6->sin6_addr, 16);
  } else {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&name);
    Put32(rec, 2, 4);
    Put32(rec, 3, ntohs(sin->sin_port));
    std::memcpy(rec + 32, &sin->sin_addr, 4);
  }
  if (mh.msg_controllen > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
#ifdef IPV6_PKTINFO
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo pi;
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        std::memcpy(rec + 48, &pi.ipi6_addr, 16);
        Put32(rec, 5, static_cast<int32_t>(pi.ipi6_ifindex));
        f |= kLocalKnown;
        continue;
      }
#endif
#if defined(IP_PKTINFO) && !defined(__FreeBSD__)
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo pi;
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        std::memcpy(rec + 48, &pi.ipi_addr, 4);  // the header's destination address
        Put32(rec, 5, static_cast<int32_t>(pi.ipi_ifindex));
        f |= kLocalKnown;
        continue;
      }
#endif
#if defined(__linux__)
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int size = 0;
        std::memcpy(&size, CMSG_DATA(c), sizeof size);
        Put32(rec, 6, size);  // coalesced datagrams of this size (UDP GRO)
        continue;
      }
#endif
#ifdef IP_RECVDSTADDR
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVDSTADDR) {
        std::memcpy(rec + 48, CMSG_DATA(c), 4);
        f |= kLocalKnown;
        continue;
      }
#endif
    }
  }
  Put32(rec, 1, f);
}

void UdpSocket::Drain() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  uint8_t* slab;
  uint8_t* meta;
  size_t n = Views(&slab, &meta);
  if (n == 0) {
    // The JS side detached or shrank its buffers: nothing can be received safely; stop reading and say why.
    if (poll_) poll_->SetEvents(0);
    ReportError(EFAULT, "recvmsg");
    return;
  }
  size_t got = 0;
  int err = 0;
#if defined(__linux__)
  for (size_t i = 0; i < n; i++) {
    iovs_[i].iov_base = slab + i * slotSize_;
    iovs_[i].iov_len = slotSize_;
    msghdr& mh = msgs_[i].msg_hdr;
    std::memset(&mh, 0, sizeof mh);
    mh.msg_name = &names_[i];
    mh.msg_namelen = sizeof(sockaddr_storage);
    mh.msg_iov = &iovs_[i];
    mh.msg_iovlen = 1;
    mh.msg_control = &ctrl_[i * kCtrl];
    mh.msg_controllen = kCtrl;
    msgs_[i].msg_len = 0;
  }
  int r;
  do {
    r = recvmmsg(fd_, msgs_.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
  } else {
    got = static_cast<size_t>(r);
    for (size_t i = 0; i < got; i++)
      Record(meta + i * kRecord, names_[i], msgs_[i].msg_hdr, std::min<size_t>(msgs_[i].msg_len, slotSize_), msgs_[i].msg_hdr.msg_flags);
  }
#else
  for (size_t i = 0; i < n; i++) {
    iovs_[i].iov_base = slab + i * slotSize_;
    iovs_[i].iov_len = slotSize_;
    msghdr mh;
    std::memset(&mh, 0, sizeof mh);
    mh.msg_name = &names_[i];
    mh.msg_namelen = sizeof(sockaddr_storage);
    mh.msg_iov = &iovs_[i];
    mh.msg_iovlen = 1;
    mh.msg_control = &ctrl_[i * kCtrl];
    mh.msg_controllen = kCtrl;
    ssize_t len;
    do {
      len = recvmsg(fd_, &mh, MSG_DONTWAIT);
    } while (len < 0 && errno == EINTR);
    if (len < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    Record(meta + i * kRecord, names_[i], mh, std::min<size_t>(static_cast<size_t>(len), slotSize_), mh.msg_flags);
    got++;
  }
#endif
  if (got > 0) {
    napi_value count = Napi::Number::New(env, static_cast<double>(got));
    if (!CallJs(env, *async_, Value(), onRead_.Value(), 1, &count)) return;
  }
  if (err != 0 && fd_ >= 0) ReportError(err, "recvmsg");
}

// A destination (or source) from raw bytes; false when the bytes do not fit the family.
static bool BuildSockaddr(int family, const uint8_t* addr, int port, uint32_t scope, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  if (port < 0 || port > 65535) return false;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin->sin_addr, addr, 4);
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__)
    sin->sin_len = sizeof(sockaddr_in);
#endif
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (family == 6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sin6->sin6_addr, addr, 16);
    sin6->sin6_scope_id = scope;
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__)
    sin6->sin6_len = sizeof(sockaddr_in6);
#endif
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// The control message that picks the source address of one datagram; returns its length (0: cannot here).
static size_t SourceControl(int family, const uint8_t* src, char* buf, size_t cap) {
  std::memset(buf, 0, cap);
  msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_control = buf;
  if (family == 6) {
#ifdef IPV6_PKTINFO
    mh.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    if (mh.msg_controllen > cap) return 0;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo pi;
    std::memset(&pi, 0, sizeof pi);
    std::memcpy(&pi.ipi6_addr, src, 16);
    std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
    return mh.msg_controllen;
#else
    return 0;
#endif
  }
#if defined(IP_SENDSRCADDR)
  mh.msg_controllen = CMSG_SPACE(sizeof(in_addr));
  if (mh.msg_controllen > cap) return 0;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_SENDSRCADDR;
  c->cmsg_len = CMSG_LEN(sizeof(in_addr));
  std::memcpy(CMSG_DATA(c), src, 4);
  return mh.msg_controllen;
#elif defined(IP_PKTINFO)
  mh.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
  if (mh.msg_controllen > cap) return 0;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
  in_pktinfo pi;
  std::memset(&pi, 0, sizeof pi);
  std::memcpy(&pi.ipi_spec_dst, src, 4);  // the source address to use; the interface is left to routing
  std::memcpy(CMSG_DATA(c), &pi, sizeof pi);
  return mh.msg_controllen;
#else
  (void)src;
  return 0;
#endif
}

Napi::Value UdpSocket::Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value UdpSocket::LocalAddressKnown(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), pktinfo_); }

// send(a, b | null, family, address bytes, port, scopeId, source bytes | null) → bytes sent, or -1 (EAGAIN: not sent)
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsTypedArray() || !(info[1].IsTypedArray() || info[1].IsNull()) || !info[2].IsNumber() ||
      !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsNumber() || !(info[6].IsTypedArray() || info[6].IsNull()))
    return ThrowType(env, "send(a, b | null, family, address, port, scopeId, source | null)");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "sendmsg");
  int family = info[2].As<Napi::Number>().Int32Value();
  size_t alen = 0;
  uint8_t* addr = TypedData(info[3].As<Napi::TypedArray>(), &alen);
  if (family != family_ || addr == nullptr || alen != (family == 4 ? 4u : 16u)) return ThrowType(env, "address bytes must match the socket's family");
  sockaddr_storage ss;
  socklen_t sslen;
  if (!BuildSockaddr(family, addr, info[4].As<Napi::Number>().Int32Value(), info[5].As<Napi::Number>().Uint32Value(), &ss, &sslen))
    return ThrowType(env, "port must be 0..65535");
  iovec iov[2];
  int niov = 0;
  size_t len;
  iov[niov].iov_base = TypedData(info[0].As<Napi::TypedArray>(), &len);
  iov[niov++].iov_len = len;
  if (info[1].IsTypedArray()) {
    iov[niov].iov_base = TypedData(info[1].As<Napi::TypedArray>(), &len);
    iov[niov++].iov_len = len;
  }
  msghdr mh;
  std::memset(&mh, 0, sizeof mh);
  mh.msg_name = &ss;
  mh.msg_namelen = sslen;
  mh.msg_iov = iov;
  mh.msg_iovlen = niov;
  char ctrl[kCtrl];
  if (info[6].IsTypedArray()) {
    size_t slen = 0;
    uint8_t* src = TypedData(info[6].As<Napi::TypedArray>(), &slen);
    if (src == nullptr || slen != alen) return ThrowType(env, "source bytes must match the socket's family");
    mh.msg_controllen = SourceControl(family, src, ctrl, sizeof ctrl);
    if (mh.msg_controllen == 0) return ThrowErrno(env, ENOPROTOOPT, "sendmsg");
    mh.msg_control = ctrl;
  }
  ssize_t n;
  do {
    n = sendmsg(fd_, &mh, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(env, -1);
  if (n < 0) return ThrowErrno(env, errno, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// sendBatch(slab, desc, start, count) → entries processed from `start` (sent, or failed with -errno in their status);
// fewer than `count` when the socket's buffer filled (EAGAIN): the rest were not attempted.
//
// With UDP GSO on (setOffload), consecutive entries to the same destination (and source) whose lengths are equal
// (the last of a run may be shorter) go out as ONE message with a UDP_SEGMENT control message: the kernel cuts it
// into those datagrams (one pass through the stack for up to kGsoMaxSegs). A GSO message the kernel refuses with EIO
// (the device cannot checksum it) turns GSO off for the socket (reported by `offload`); one refused with EINVAL or
// EMSGSIZE (a segment past the route's MTU) is sent again datagram by datagram.
Napi::Value UdpSocket::SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsNumber())
    return ThrowType(env, "sendBatch(slab, desc, start, count)");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "sendmmsg");
  size_t slabLen = 0, descLen = 0;
  uint8_t* slab = TypedData(info[0].As<Napi::TypedArray>(), &slabLen);
  uint8_t* desc = TypedData(info[1].As<Napi::TypedArray>(), &descLen);
  int64_t start = info[2].As<Napi::Number>().Int64Value();
  int64_t count = info[3].As<Napi::Number>().Int64Value();
  if (slab == nullptr || desc == nullptr || start < 0 || count < 0 || static_cast<size_t>(start + count) * kRecord > descLen)
    return ThrowType(env, "desc must hold start + count 64-byte records");
  size_t end = static_cast<size_t>(start + count);
  size_t i = static_cast<size_t>(start);
  sockaddr_storage names[kBatchChunk];
  iovec iovs[kBatchIovs];
  alignas(cmsghdr) char ctrls[kBatchChunk][96];
  auto word = [&](size_t k, int w) {
    int32_t v;
    std::memcpy(&v, desc + k * kRecord + w * 4, 4);
    return v;
  };
  auto status = [&](size_t k, int32_t v) { std::memcpy(desc + k * kRecord + 24, &v, 4); };
  // May entry k join a GSO message that began with entry `first` (same destination, source, and shape)?
  auto sameRoute = [&](size_t first, size_t k) {
    return std::memcmp(desc + first * kRecord + 8, desc + k * kRecord + 8, 16) == 0 &&          // family, port, scope, flags
           std::memcmp(desc + first * kRecord + 32, desc + k * kRecord + 32, (word(k, 5) & 1) ? 32 : 16) == 0;  // addresses
  };
#if defined(__linux__)
  mmsghdr msgs[kBatchChunk];
  bool noGsoFrom = false;  // the message at the front of the rest is resent without GSO (EINVAL / EMSGSIZE)
#endif
  while (i < end) {
    // Build up to kBatchChunk messages; an entry that cannot be built fails alone (EINVAL) and is skipped.
    size_t first[kBatchChunk];  // each message's first entry
    size_t segs[kBatchChunk];   // and its entries (datagrams)
    size_t m = 0;
    size_t niov = 0;
    while (i < end && m < kBatchChunk && niov < kBatchIovs) {
      size_t k = i++;
      int32_t off = word(k, 0), len = word(k, 1), family = word(k, 2), port = word(k, 3), flags = word(k, 5);
      uint32_t scope = static_cast<uint32_t>(word(k, 4));
      socklen_t sl;
      if (off < 0 || len < 0 || static_cast<size_t>(off) + static_cast<size_t>(len) > slabLen || family != family_ ||
          !BuildSockaddr(family, desc + k * kRecord + 32, port, scope, &names[m], &sl)) {
        status(k, -EINVAL);
        continue;
      }
      iovs[niov].iov_base = slab + off;
      iovs[niov].iov_len = static_cast<size_t>(len);
      size_t n = 1;
#if defined(__linux__)
      // GSO: take the following entries of the same route while their lengths are this one's (a shorter one ends it).
      bool gso = gso_ && !noGsoFrom && len > 0;
      noGsoFrom = false;
      if (gso) {
        size_t total = static_cast<size_t>(len);
        while (i < end && n < kGsoMaxSegs && niov + n < kBatchIovs) {
          int32_t o2 = word(i, 0), l2 = word(i, 1);
          if (l2 > len || l2 <= 0 || o2 < 0 || static_cast<size_t>(o2) + static_cast<size_t>(l2) > slabLen ||
              total + static_cast<size_t>(l2) > kGsoMaxBytes || !sameRoute(k, i))
            break;
          iovs[niov + n].iov_base = slab + o2;
          iovs[niov + n].iov_len = static_cast<size_t>(l2);
          total += static_cast<size_t>(l2);
          n++;
          i++;
          if (l2 < len) break;
        }
      }
#endif
      msghdr* mh;
#if defined(__linux__)
      mh = &msgs[m].msg_hdr;
#else
      msghdr one;
      mh = &one;
#endif
      std::memset(mh, 0, sizeof *mh);
      mh->msg_name = &names[m];
      mh->msg_namelen = sl;
      mh->msg_iov = &iovs[niov];
      mh->msg_iovlen = n;
      size_t clen = 0;
      if (flags & 1) {
        clen = SourceControl(family, desc + k * kRecord + 48, ctrls[m], sizeof ctrls[m]);
        if (clen == 0) {
          for (size_t q = 0; q < n; q++) status(k + q, -ENOPROTOOPT);
          continue;
        }
      }
#if defined(__linux__)
      if (n > 1) {
        // The UDP_SEGMENT control message after the source's (if any): the size of every datagram but the last.
        if (clen == 0) std::memset(ctrls[m], 0, sizeof ctrls[m]);
        msghdr probe;
        std::memset(&probe, 0, sizeof probe);
        probe.msg_control = ctrls[m] + clen;
        probe.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        cmsghdr* c = CMSG_FIRSTHDR(&probe);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t size = static_cast<uint16_t>(len);
        std::memcpy(CMSG_DATA(c), &size, sizeof size);
        clen += CMSG_SPACE(sizeof(uint16_t));
      }
#endif
      if (clen > 0) {
        mh->msg_control = ctrls[m];
        mh->msg_controllen = clen;
      }
      niov += n;
#if defined(__linux__)
      first[m] = k;
      segs[m++] = n;
#else
      // Elsewhere: one sendmsg per entry, right here.
      ssize_t r;
      do {
        r = sendmsg(fd_, mh, 0);
      } while (r < 0 && errno == EINTR);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(env, static_cast<double>(k - start));
      status(k, r < 0 ? -errno : static_cast<int32_t>(r));
      (void)first;
      (void)segs;
      (void)sameRoute;
#endif
    }
#if defined(__linux__)
    size_t done = 0;
    while (done < m) {
      int r;
      do {
        r = sendmmsg(fd_, msgs + done, static_cast<unsigned>(m - done), 0);
      } while (r < 0 && errno == EINTR);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Napi::Number::New(env, static_cast<double>(first[done] - start));
      if (r < 0) {
        int err = errno;
        if (segs[done] > 1 && (err == EIO || err == EINVAL || err == EMSGSIZE)) {
          // The kernel would not segment this one: from it on, again without GSO for it (EIO: for the socket).
          if (err == EIO) {
            gso_ = false;
            gsoError_ = err;
          }
          gsoRetries_++;
          i = first[done];
          noGsoFrom = true;
          break;
        }
        // The first of the rest failed: it alone (all its datagrams), then go on.
        for (size_t q = 0; q < segs[done]; q++) status(first[done] + q, -err);
        done++;
        continue;
      }
      for (int j = 0; j < r; j++) {
        size_t mj = done + static_cast<size_t>(j);
        for (size_t q = 0; q < segs[mj]; q++) status(first[mj] + q, static_cast<int32_t>(msgs[mj].msg_hdr.msg_iov[q].iov_len));
        if (segs[mj] > 1) {
          gsoSends_++;
          gsoSegments_ += static_cast<double>(segs[mj]);
        }
      }
      done += static_cast<size_t>(r);
    }
    if (noGsoFrom) {
      // Entries of the messages after the refused one were built but not sent: they are rebuilt from `i`.
      continue;
    }
#endif
  }
  return Napi::Number::New(env, static_cast<double>(count));
}

// setOffload(gso, gro) → the offloads now on (bit 1 GSO, bit 2 GRO). GSO is on where the kernel knows UDP_SEGMENT
// (and the socket sends checksums: SO_NO_CHECK excludes it); GRO where setsockopt(UDP_GRO) succeeds.
Napi::Value UdpSocket::SetOffload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBoolean() || !info[1].IsBoolean()) return ThrowType(env, "setOffload(gso: boolean, gro: boolean)");
  if (fd_ < 0) return ThrowErrno(env, EBADF, "setsockopt");
  bool wantGso = info[0].As<Napi::Boolean>().Value();
  bool wantGro = info[1].As<Napi::Boolean>().Value();
#if defined(__linux__)
  gso_ = false;
  gsoError_ = 0;
  if (wantGso) {
    int v = 0;
    socklen_t vl = sizeof v;
    int nocheck = 0;
    socklen_t nl = sizeof nocheck;
    if (getsockopt(fd_, SOL_UDP, UDP_SEGMENT, &v, &vl) != 0)
      gsoError_ = errno;
    else if (getsockopt(fd_, SOL_SOCKET, SO_NO_CHECK, &nocheck, &nl) == 0 && nocheck != 0)
      gsoError_ = EINVAL;  // the kernel refuses GSO without UDP checksums
    else
      gso_ = true;
  }
  int on = wantGro ? 1 : 0;
  if (setsockopt(fd_, SOL_UDP, UDP_GRO, &on, sizeof on) == 0)
    gro_ = wantGro;
  else {
    gro_ = false;
    if (wantGro) groError_ = errno;
  }
#else
  (void)wantGso;
  (void)wantGro;
  gsoError_ = ENOTSUP;
  groError_ = ENOTSUP;
#endif
  return Napi::Number::New(env, (gso_ ? 1 : 0) | (gro_ ? 2 : 0));
}

// offload → { gso, gro, gsoError, groError, gsoSends, gsoSegments, gsoRetries, groReceives, groSegments }
Napi::Value UdpSocket::Offload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("gso", Napi::Boolean::New(env, gso_));
  o.Set("gro", Napi::Boolean::New(env, gro_));
  o.Set("gsoError", Napi::Number::New(env, gsoError_));
  o.Set("groError", Napi::Number::New(env, groError_));
  o.Set("gsoSends", Napi::Number::New(env, gsoSends_));
  o.Set("gsoSegments", Napi::Number::New(env, gsoSegments_));
  o.Set("gsoRetries", Napi::Number::New(env, gsoRetries_));
  return o;
}

Napi::Value UdpSocket::WantWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0 || poll_ == nullptr) return ThrowErrno(env, EBADF, "uv_poll_start");
  int r = poll_->SetEvents(UV_READABLE | UV_WRITABLE);
  if (r != 0) return ThrowErrno(env, -r, "uv_poll_start");
  return env.Undefined();
}

Napi::Value UdpSocket::Ref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Ref();
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Unref(const Napi::CallbackInfo& info) {
  if (poll_) poll_->Unref();
  return info.Env().Undefined();
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) {
    CloseNow();
    slab_.Reset();
    meta_.Reset();
    Napi::ObjectWrap<UdpSocket>::Unref();  // the JS object may now be collected
  }
  return info.Env().Undefined();
}

}  // namespace natt
