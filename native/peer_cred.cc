// Who is on the other end of a connected Unix socket: getsockopt(SO_PEERCRED) on Linux, LOCAL_PEEREID / getpeereid elsewhere.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"

namespace natt {

// getPeerCred(fd) -> { pid, uid, gid }. The kernel's answer, taken when the peer connected (not forgeable by the peer).
// pid is -1 where the OS does not say (getpeereid on FreeBSD and macOS).
Napi::Value NattAddon::GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "getPeerCred(fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) return ThrowErrno(env, EBADF, "getsockopt");
  double pid = -1, uid = -1, gid = -1;
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  if (len != sizeof cred) return ThrowErrno(env, EPROTO, "getsockopt");
  pid = cred.pid;
  uid = cred.uid;
  gid = cred.gid;
#elif defined(__NetBSD__) && defined(LOCAL_PEEREID)
  struct unpcbid id;
  socklen_t len = sizeof id;
  if (getsockopt(fd, 0, LOCAL_PEEREID, &id, &len) != 0) return ThrowErrno(env, errno, "getsockopt");
  pid = id.unp_pid;
  uid = id.unp_euid;
  gid = id.unp_egid;
#elif defined(__FreeBSD__) || defined(__APPLE__) || defined(__OpenBSD__) || defined(__NetBSD__)
  uid_t u;
  gid_t g;
  if (getpeereid(fd, &u, &g) != 0) return ThrowErrno(env, errno, "getpeereid");
  uid = u;
  gid = g;
#else
  (void)fd;
  return ThrowErrno(env, ENOPROTOOPT, "getsockopt");
#endif
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, pid));
  o.Set("uid", Napi::Number::New(env, uid));
  o.Set("gid", Napi::Number::New(env, gid));
  return o;
}

}  // namespace natt
