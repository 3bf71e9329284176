// The NAT-T UDP socket: socket + setsockopt (UDP_ENCAP, or SO_NO_CHECK for userland) + bind; read-backs; fd helpers.
#include <arpa/inet.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"
#include "platform.h"

namespace natt {

// Closes the fd on every early return unless released.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) {
      int saved = errno;
      close(fd);
      errno = saved;
    }
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

Napi::Value NattAddon::OpenEncapSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber())
    return ThrowType(env, "openEncapSocket(family, address, port, encapType[, noCheck])");
  // encapType 0: no UDP_ENCAP (the userland backend); noCheck: SO_NO_CHECK, IPv4 UDP sent with checksum 0.
  bool noCheck = info.Length() > 4 && info[4].ToBoolean().Value();
  int family = info[0].As<Napi::Number>().Int32Value();
  std::string address = info[1].As<Napi::String>().Utf8Value();
  int port = info[2].As<Napi::Number>().Int32Value();
  int encapType = info[3].As<Napi::Number>().Int32Value();
  if (family != 4 && family != 6) return ThrowType(env, "family must be 4 or 6");
  if (port < 0 || port > 65535) return ThrowType(env, "port must be 0..65535");

  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  socklen_t sslen;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &sin->sin_addr) != 1) return ThrowErrno(env, EINVAL, "inet_pton");
    sslen = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr) != 1) return ThrowErrno(env, EINVAL, "inet_pton");
    sslen = sizeof(sockaddr_in6);
  }
#if defined(__APPLE__) || (UDP_ENCAP < 0)
  if (encapType != 0) return ThrowErrno(env, ENOPROTOOPT, "setsockopt");
#endif
#ifndef SO_NO_CHECK
  if (noCheck) return ThrowErrno(env, ENOPROTOOPT, "setsockopt");
#endif
  FdGuard fd{OpenSocket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM, 0)};
  if (fd.fd < 0) return ThrowErrno(env, errno, "socket");
  if (family == 6) {
    int on = 1;
    if (setsockopt(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) return ThrowErrno(env, errno, "setsockopt");
  }
#if !defined(__APPLE__) && (UDP_ENCAP >= 0)
  if (encapType != 0 && setsockopt(fd.fd, IPPROTO_UDP, UDP_ENCAP, &encapType, sizeof encapType) != 0)
    return ThrowErrno(env, errno, "setsockopt");
#endif
#ifdef SO_NO_CHECK
  int one = 1;
  if (noCheck && setsockopt(fd.fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one) != 0)
    return ThrowErrno(env, errno, "setsockopt");
#endif
  if (bind(fd.fd, reinterpret_cast<sockaddr*>(&ss), sslen) != 0) return ThrowErrno(env, errno, "bind");
  return Napi::Number::New(env, fd.release());
}

Napi::Value NattAddon::GetNoCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
#ifdef SO_NO_CHECK
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &value, &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  return Napi::Boolean::New(env, value != 0);
#else
  (void)fd;
  return ThrowErrno(env, ENOPROTOOPT, "getsockopt");
#endif
}

Napi::Value NattAddon::GetEncap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
#if UDP_ENCAP < 0 || defined(__NetBSD__) || defined(__APPLE__)
  // NetBSD handles UDP_ENCAP only on set (its getsockopt says EINVAL); macOS has no UDP_ENCAP: say so the same way.
  (void)fd;
  return ThrowErrno(env, ENOPROTOOPT, "getsockopt");
#else
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, IPPROTO_UDP, UDP_ENCAP, &value, &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  return Napi::Number::New(env, value);
#endif
}

Napi::Value NattAddon::SetSockOptBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsTypedArray())
    return ThrowType(env, "setSockOptBytes(fd, level, name, bytes: Uint8Array)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  Napi::TypedArray t = info[3].As<Napi::TypedArray>();
  if (level < 0 || name < 0) return ThrowErrno(env, ENOPROTOOPT, "setsockopt");  // the OS has no such option (-1)
  const uint8_t* data = static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  if (setsockopt(fd, level, name, data, static_cast<socklen_t>(t.ByteLength())) != 0) return ThrowErrno(env, errno, "setsockopt");
  return env.Undefined();
}

// getsockopt(fd, level, name) of an int option (SO_RCVBUF, SO_SNDBUF ...): its value.
Napi::Value NattAddon::GetSockOptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) return ThrowType(env, "getSockOptInt(fd, level, name)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int level = info[1].As<Napi::Number>().Int32Value();
  int name = info[2].As<Napi::Number>().Int32Value();
  if (level < 0 || name < 0) return ThrowErrno(env, ENOPROTOOPT, "getsockopt");
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  return Napi::Number::New(env, value);
}

Napi::Value NattAddon::GetSockName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, "fd must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ThrowErrno(env, errno, "getsockname");
  char text[INET6_ADDRSTRLEN] = {0};
  Napi::Object o = Napi::Object::New(env);
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    o.Set("family", 4);
    o.Set("port", ntohs(sin->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    o.Set("family", 6);
    o.Set("port", ntohs(sin6->sin6_port));
  } else {
    return ThrowErrno(env, EAFNOSUPPORT, "getsockname");
  }
  o.Set("address", text);
  return o;
}

Napi::Value NattAddon::IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  unsigned idx = if_nametoindex(name.c_str());
  return Napi::Number::New(env, idx);  // 0: no such interface
}

}  // namespace natt
