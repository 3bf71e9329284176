// Addon entry point: per-env instance data, the method table, OS constants and the errno → Error helper.
#include "addon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <openssl/crypto.h>

#include "cipher.h"
#include "message_socket.h"
#include "udp_socket.h"
#include "platform.h"

namespace natt {

static constexpr size_t kRecvBufSize = 256 * 1024;

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(syscall) + " failed: " + code;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool CallJs(napi_env env, napi_async_context async, napi_value recv, napi_value fn, size_t argc, const napi_value* argv) {
  napi_value result;
  if (napi_make_callback(env, async, recv, fn, argc, argv, &result) == napi_ok) return true;
  // The callback threw: report it like any uncaught exception. (A terminating worker has none to report.)
  napi_value exc;
  if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
    napi_valuetype t;
    if (napi_typeof(env, exc, &t) == napi_ok && t != napi_undefined) napi_fatal_exception(env, exc);
  }
  return false;
}

Napi::Value ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

int OpenSocket(int family, int type, int protocol) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#else
  int fd = socket(family, type, protocol);
  if (fd < 0) return fd;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
#endif
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("AF_INET", static_cast<int>(AF_INET));
  c.Set("AF_INET6", static_cast<int>(AF_INET6));
  c.Set("AF_KEY", static_cast<int>(AF_KEY));
  c.Set("AF_NETLINK", static_cast<int>(AF_NETLINK));
  c.Set("SOCK_RAW", static_cast<int>(SOCK_RAW));
  c.Set("SOCK_DGRAM", static_cast<int>(SOCK_DGRAM));
  c.Set("PF_KEY_V2", static_cast<int>(PF_KEY_V2));
  c.Set("NETLINK_XFRM", static_cast<int>(NETLINK_XFRM));
  c.Set("NETLINK_ROUTE", static_cast<int>(NETLINK_ROUTE));
  c.Set("SOL_NETLINK", static_cast<int>(SOL_NETLINK));
  c.Set("NETLINK_EXT_ACK", static_cast<int>(NETLINK_EXT_ACK));
  c.Set("NETLINK_CAP_ACK", static_cast<int>(NETLINK_CAP_ACK));
  c.Set("IFF_TUN", static_cast<int>(IFF_TUN));
  c.Set("IFF_TAP", static_cast<int>(IFF_TAP));
  c.Set("IFF_NO_PI", static_cast<int>(IFF_NO_PI));
  c.Set("IFF_VNET_HDR", static_cast<int>(IFF_VNET_HDR));
  c.Set("IFF_TUN_EXCL", static_cast<int>(IFF_TUN_EXCL));
#if defined(__linux__)
  // TUNSETOFFLOAD flags (linux/if_tun.h); USO needs Linux 6.2 (older kernels refuse the flag with EINVAL).
  c.Set("TUN_F_CSUM", static_cast<int>(TUN_F_CSUM));
  c.Set("TUN_F_TSO4", static_cast<int>(TUN_F_TSO4));
  c.Set("TUN_F_TSO6", static_cast<int>(TUN_F_TSO6));
  c.Set("TUN_F_TSO_ECN", static_cast<int>(TUN_F_TSO_ECN));
  c.Set("TUN_F_USO4", static_cast<int>(TUN_F_USO4));
  c.Set("TUN_F_USO6", static_cast<int>(TUN_F_USO6));
#endif
  c.Set("IFF_MULTI_QUEUE", static_cast<int>(IFF_MULTI_QUEUE));
  c.Set("IFNAMSIZ", static_cast<int>(IFNAMSIZ));
  c.Set("IPPROTO_UDP", static_cast<int>(IPPROTO_UDP));
  c.Set("UDP_ENCAP", static_cast<int>(UDP_ENCAP));
  c.Set("UDP_ENCAP_ESPINUDP_NON_IKE", static_cast<int>(UDP_ENCAP_ESPINUDP_NON_IKE));
  c.Set("UDP_ENCAP_ESPINUDP", static_cast<int>(UDP_ENCAP_ESPINUDP));
  c.Set("SOL_SOCKET", static_cast<int>(SOL_SOCKET));
  c.Set("SO_RCVBUF", static_cast<int>(SO_RCVBUF));
  c.Set("SO_SNDBUF", static_cast<int>(SO_SNDBUF));
#if defined(SO_RCVBUFFORCE) && defined(SO_SNDBUFFORCE)
  c.Set("SO_RCVBUFFORCE", static_cast<int>(SO_RCVBUFFORCE));
  c.Set("SO_SNDBUFFORCE", static_cast<int>(SO_SNDBUFFORCE));
#else
  c.Set("SO_RCVBUFFORCE", -1);
  c.Set("SO_SNDBUFFORCE", -1);
#endif
  c.Set("IPPROTO_IP", static_cast<int>(IPPROTO_IP));
  c.Set("IPPROTO_IPV6", static_cast<int>(IPPROTO_IPV6));
  c.Set("IP_XFRM_POLICY", static_cast<int>(NATT_IP_XFRM_POLICY));
  c.Set("IPV6_XFRM_POLICY", static_cast<int>(NATT_IPV6_XFRM_POLICY));
  c.Set("IP_IPSEC_POLICY", static_cast<int>(NATT_IP_IPSEC_POLICY));
  c.Set("IPV6_IPSEC_POLICY", static_cast<int>(NATT_IPV6_IPSEC_POLICY));
  // Packet capture (Linux AF_PACKET); -1 where the OS has none.
  c.Set("AF_PACKET", static_cast<int>(NATT_AF_PACKET));
  c.Set("SOL_PACKET", static_cast<int>(NATT_SOL_PACKET));
  c.Set("ETH_P_ALL", static_cast<int>(NATT_ETH_P_ALL));
  c.Set("PACKET_STATISTICS", static_cast<int>(NATT_PACKET_STATISTICS));
  c.Set("SO_TIMESTAMPNS", static_cast<int>(NATT_SO_TIMESTAMPNS));
  c.Freeze();
  return c;
}

NattAddon::NattAddon(Napi::Env env, Napi::Object exports) {
  napi_get_uv_event_loop(env, &loop);
  recvBuf.resize(kRecvBufSize);
  Napi::Object ctorHolder = InitMessageSocket(env, this);
  Napi::Object udpHolder = InitUdpSocket(env, this);
  Napi::Object tunHolder = InitTun(env, this);
  Napi::Object cipherHolder = InitEspCipher(env, this);
  DefineAddon(exports, {
                           InstanceMethod("openEncapSocket", &NattAddon::OpenEncapSocket),
                           InstanceMethod("getEncap", &NattAddon::GetEncap),
                           InstanceMethod("getNoCheck", &NattAddon::GetNoCheck),
                           InstanceMethod("closeFd", &NattAddon::CloseFd),
                           InstanceMethod("getPeerCred", &NattAddon::GetPeerCred),
                           InstanceMethod("setSockOptBytes", &NattAddon::SetSockOptBytes),
                           InstanceMethod("getSockName", &NattAddon::GetSockName),
                           InstanceMethod("getSockOptInt", &NattAddon::GetSockOptInt),
                           InstanceMethod("espCipherContexts", &NattAddon::EspCipherContexts),
                           InstanceMethod("ifNameToIndex", &NattAddon::IfNameToIndex),
                           InstanceMethod("probe", &NattAddon::Probe),
                           InstanceValue("constants", Constants(env), napi_enumerable),
                           InstanceValue("MessageSocket", ctorHolder.Get("MessageSocket"), napi_enumerable),
                           InstanceValue("UdpSocket", udpHolder.Get("UdpSocket"), napi_enumerable),
                           InstanceValue("Tun", tunHolder.Get("Tun"), napi_enumerable),
                           InstanceValue("EspCipher", cipherHolder.Get("EspCipher"), napi_enumerable),
                           // The libcrypto the addon's symbols resolved to (Node's own): its version text.
                           InstanceValue("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)),
                                         napi_enumerable),
                       });
}

NattAddon::~NattAddon() {
  // The env is going away: stop polling and close every fd still open.
  std::set<LiveSocket*> sockets;
  sockets.swap(live);
  for (LiveSocket* s : sockets) s->CloseNow();
  std::set<EspCipher*> ciphers_;
  ciphers_.swap(ciphers);
  for (EspCipher* c : ciphers_) c->Free();
}

Napi::Value NattAddon::CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (close(fd) != 0) return ThrowErrno(env, errno, "close");
  return env.Undefined();
}

// How many native ESP cipher contexts of this env are alive (not freed yet): for leak tests and stats.
Napi::Value NattAddon::EspCipherContexts(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ciphers.size()));
}

Napi::Value NattAddon::Probe(const Napi::CallbackInfo& info) { return ProbeFacts(info.Env()); }

}  // namespace natt

using NattAddonEntry = natt::NattAddon;
NODE_API_ADDON(NattAddonEntry)
