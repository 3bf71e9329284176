// Reused OpenSSL cipher contexts for ESP, one object per SA: in-place seal/open of single packets and of batches.
#pragma once

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "addon.h"

namespace natt {

// Per-packet results written into a batch's status array (the values src/esp/cipher.ts names).
enum CipherStatus : uint8_t {
  kPending = 0,     // in: process this packet; any other value in: leave it alone
  kOk = 1,          // sealed, or authenticated and decrypted
  kAuthFailed = 2,  // the ICV did not verify; the bytes are as they were
  kBadLayout = 3,   // offset/length outside the slab or not a possible packet of this suite
  kFailed = 4,      // OpenSSL refused to seal (not expected with a valid context)
};

// HMAC (RFC 2104) with the inner and outer hash states after the key block precomputed: per packet two struct
// copies, no allocation (EVP_MD_CTX_copy_ex allocates in OpenSSL 3.0). The states are key-derived and wiped on free.
class Hmac {
 public:
  enum Hash { kNone, kSha1, kSha256, kSha384, kSha512 };
  bool Init(Hash hash, const uint8_t* key, size_t keyLen);
  // The full MAC of a ‖ b (b may be empty) into md (mdLen() bytes).
  void Mac(const uint8_t* a, size_t aLen, const uint8_t* b, size_t bLen, uint8_t* md) const;
  size_t mdLen() const { return mdLen_; }
  void Wipe();

 private:
  union State {
    SHA_CTX s1;
    SHA256_CTX s256;
    SHA512_CTX s512;
  };
  Hash hash_ = kNone;
  size_t mdLen_ = 0;
  State inner_, outer_;
};

class EspCipher : public Napi::ObjectWrap<EspCipher> {
 public:
  enum Kind { kAead, kGmac, kCbc, kNull };
  explicit EspCipher(const Napi::CallbackInfo& info);
  ~EspCipher();
  // Free the OpenSSL contexts and wipe every key-derived byte now (idempotent); used by free() and env teardown.
  void Free();

 private:
  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value SealBatch(const Napi::CallbackInfo& info);
  Napi::Value OpenBatch(const Napi::CallbackInfo& info);
  Napi::Value FreeJs(const Napi::CallbackInfo& info);

  // One packet [SPI|seq|IV|plaintext…|padlen|nh|ICV] of len bytes at pkt. Layout already checked.
  bool SealOne(uint8_t* pkt, size_t len, uint32_t seqHi);
  // out: where the plaintext goes (== pkt + ptOff for in place, else a disjoint buffer of ptLen bytes).
  bool OpenOne(uint8_t* pkt, size_t len, uint32_t seqHi, uint8_t* out);
  bool LayoutOk(size_t len) const;
  bool StartAead(EVP_CIPHER_CTX* ctx, const uint8_t* pkt, size_t ptEnd, uint32_t seqHi, uint8_t* nonce, uint8_t* tag);
  void Icv(const uint8_t* pkt, size_t ptEnd, uint32_t seqHi, uint8_t* md) const;
  Napi::Value Batch(const Napi::CallbackInfo& info, bool seal);

  friend Napi::Object InitEspCipher(Napi::Env env, NattAddon* addon);

  NattAddon* addon_ = nullptr;
  bool live_ = false;
  Kind kind_ = kNull;
  bool esn_ = false;
  size_t ivLen_ = 0;
  size_t cipherIcvLen_ = 0;  // AEAD/GMAC tag bytes
  size_t macIcvLen_ = 0;     // truncated HMAC bytes (CBC, NULL)
  size_t icvLen_ = 0;
  uint8_t salt_[4] = {0, 0, 0, 0};
  EVP_CIPHER* cipher_ = nullptr;
  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  Hmac hmac_;
};

}  // namespace natt
