// Shared declarations of the addon: per-environment instance data and the errno → Node-style Error helper.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <set>
#include <vector>

namespace natt {

// A socket the env closes at teardown if JS has not (MessageSocket, UdpSocket).
class LiveSocket {
 public:
  virtual ~LiveSocket() = default;
  // Stop polling and close the fd now (idempotent).
  virtual void CloseNow() = 0;
};
class EspCipher;

// Per-env state (one per main thread / worker): no globals, so the addon is worker-safe.
class NattAddon : public Napi::Addon<NattAddon> {
 public:
  NattAddon(Napi::Env env, Napi::Object exports);
  ~NattAddon();

  uv_loop_t* loop = nullptr;
  Napi::FunctionReference messageSocketCtor;
  Napi::FunctionReference udpSocketCtor;
  Napi::FunctionReference tunCtor;
  // One receive buffer shared by this env's message sockets, and the TUN devices' spill buffer for oversize packets
  // (single-threaded per env).
  std::vector<uint8_t> recvBuf;
  // Sockets still open (MessageSocket, UdpSocket), closed when the env is torn down.
  std::set<LiveSocket*> live;
  Napi::FunctionReference espCipherCtor;
  // ESP cipher contexts not yet freed: freed (keys wiped) when the env is torn down.
  std::set<EspCipher*> ciphers;

 private:
  Napi::Value OpenEncapSocket(const Napi::CallbackInfo& info);
  Napi::Value GetEncap(const Napi::CallbackInfo& info);
  Napi::Value GetNoCheck(const Napi::CallbackInfo& info);
  Napi::Value CloseFd(const Napi::CallbackInfo& info);
  Napi::Value GetPeerCred(const Napi::CallbackInfo& info);
  Napi::Value SetSockOptBytes(const Napi::CallbackInfo& info);
  Napi::Value GetSockName(const Napi::CallbackInfo& info);
  Napi::Value GetSockOptInt(const Napi::CallbackInfo& info);
  Napi::Value EspCipherContexts(const Napi::CallbackInfo& info);
  Napi::Value IfNameToIndex(const Napi::CallbackInfo& info);
  Napi::Value Probe(const Napi::CallbackInfo& info);
};

// An Error with Node's system-error fields: code ('EPERM'), errno (negative), syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);
// Throws ErrnoError and returns undefined (exceptions are disabled in C++).
Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall);
Napi::Value ThrowType(Napi::Env env, const char* message);
// Call a JS callback from libuv through napi_make_callback; false when it threw (reported like any uncaught
// exception) or the env is stopping.
bool CallJs(napi_env env, napi_async_context async, napi_value recv, napi_value fn, size_t argc, const napi_value* argv);

// A socket(2) that is non-blocking and close-on-exec everywhere (macOS lacks SOCK_NONBLOCK).
int OpenSocket(int family, int type, int protocol);

Napi::Object InitMessageSocket(Napi::Env env, NattAddon* addon);
Napi::Object InitUdpSocket(Napi::Env env, NattAddon* addon);
Napi::Object InitTun(Napi::Env env, NattAddon* addon);
Napi::Object InitEspCipher(Napi::Env env, NattAddon* addon);
Napi::Object Constants(Napi::Env env);
Napi::Object ProbeFacts(Napi::Env env);

}  // namespace natt
