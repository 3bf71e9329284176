// Host facts for probe(): can PF_KEY, NETLINK_XFRM, UDP_ENCAP (v4, v6) and /dev/net/tun be opened; closes all it opens.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"
#include "platform.h"

namespace natt {

static Napi::Object Fact(Napi::Env env, int err) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", err == 0);
  if (err != 0) {
    o.Set("code", uv_err_name(-err));
    o.Set("errno", -err);
  }
  return o;
}

// 0 when socket(family, type, protocol) opens, else the errno.
static int TrySocket(int family, int type, int protocol) {
  if (family < 0 || protocol < 0) return EAFNOSUPPORT;
  int fd = OpenSocket(family, type, protocol);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

static int TryEncap(int family) {
#if UDP_ENCAP < 0 || defined(__APPLE__)
  (void)family;
  return ENOPROTOOPT;
#else
  int fd = OpenSocket(family, SOCK_DGRAM, 0);
  if (fd < 0) return errno;
  int type = UDP_ENCAP_ESPINUDP;
  int err = setsockopt(fd, IPPROTO_UDP, UDP_ENCAP, &type, sizeof type) == 0 ? 0 : errno;
  close(fd);
  return err;
#endif
}

static int TryTun() {
#if defined(__linux__)
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
#else
  int fd = open("/dev/tun", O_RDWR | O_CLOEXEC);
#endif
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

Napi::Object ProbeFacts(Napi::Env env) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("pfkey", Fact(env, TrySocket(AF_KEY, SOCK_RAW, PF_KEY_V2)));
  r.Set("xfrm", Fact(env, TrySocket(AF_NETLINK, SOCK_RAW, NETLINK_XFRM)));
  r.Set("udpEncap4", Fact(env, TryEncap(AF_INET)));
  r.Set("udpEncap6", Fact(env, TryEncap(AF_INET6)));
  r.Set("tun", Fact(env, TryTun()));
  return r;
}

}  // namespace natt
