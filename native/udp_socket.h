// The addon's UDP socket: a bound fd polled by a PollHandle; batched receive into a JS-owned slab, sendmsg/sendmmsg out.
//
// Receive: on readable, up to `slots` datagrams (recvmmsg on Linux, a recvmsg loop elsewhere) are written into the
// slab (slot i at i * slotSize) with one 64-byte record each in the metadata array, then JS is called ONCE with the
// count. Record layout (int32 words; addresses are raw network-order bytes):
//   [0] bytes stored  [1] flags (1 truncated, 2 local address known)  [2] family 4/6  [3] source port
//   [4] source scope id  [5] arrival interface index  [6] GRO segment size (0: one datagram; else the slot holds
//   datagrams of that size, the last maybe shorter: UDP GRO)  [7] 0  bytes 32..47 source  bytes 48..63 local address
// Send: Send() one datagram from up to two buffers (marker + payload) with an optional source address (IP_PKTINFO /
// IPV6_PKTINFO); SendBatch() many from a slab and a descriptor array (same 64-byte stride):
//   [0] slab offset  [1] length  [2] family  [3] port  [4] scope id  [5] flags (1: source given)  [6] status (out:
//   bytes sent, or -errno)  [7] 0  bytes 32..47 destination  bytes 48..63 source
// EAGAIN is never an error: Send returns -1, SendBatch stops early; WantWritable() asks for one onWritable call.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <vector>

#include "addon.h"
#include "poll_handle.h"

namespace natt {

class UdpSocket : public Napi::ObjectWrap<UdpSocket>, public LiveSocket {
 public:
  UdpSocket(const Napi::CallbackInfo& info);
  ~UdpSocket();
  void CloseNow() override;

 private:
  static void OnPoll(void* self, int status, int events);
  static void OnTeardown(void* self);
  void Drain();
  bool ReportError(int err, const char* syscall);
  // The slab and metadata as they are now (a detached or shrunk buffer gives fewer slots, or none).
  size_t Views(uint8_t** slab, uint8_t** meta);

  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value LocalAddressKnown(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SendBatch(const Napi::CallbackInfo& info);
  Napi::Value WantWritable(const Napi::CallbackInfo& info);
  Napi::Value SetOffload(const Napi::CallbackInfo& info);
  Napi::Value Offload(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  friend Napi::Object InitUdpSocket(Napi::Env env, NattAddon* addon);

  NattAddon* addon_ = nullptr;
  int fd_ = -1;
  int family_ = 4;
  bool pktinfo_ = false;  // the kernel reports each datagram's local address
  // Segmentation offloads (setOffload): UDP GSO on send, UDP GRO on receive; why one is off; what GSO did.
  bool gso_ = false;
  bool gro_ = false;
  int gsoError_ = 0;
  int groError_ = 0;
  double gsoSends_ = 0;
  double gsoSegments_ = 0;
  double gsoRetries_ = 0;
  size_t slotSize_ = 0;
  size_t slots_ = 0;
  PollHandle* poll_ = nullptr;
  Napi::Reference<Napi::TypedArray> slab_;
  Napi::Reference<Napi::TypedArray> meta_;
  Napi::FunctionReference onRead_;
  Napi::FunctionReference onError_;
  Napi::FunctionReference onWritable_;
  Napi::AsyncContext* async_ = nullptr;
  // Receive scratch, sized once (slots_ entries).
  std::vector<sockaddr_storage> names_;
  std::vector<iovec> iovs_;
  std::vector<char> ctrl_;
#if defined(__linux__)
  std::vector<mmsghdr> msgs_;
#endif
};

}  // namespace natt
