// ESP cipher contexts from the OpenSSL inside Node: keyed once per SA, then in-place seal/open per packet or per batch.
//
// No protocol decisions here: TypeScript (src/esp/transform.ts) lays the packet out, picks the sequence number, IV and
// padding, checks the replay window and the padding. This file only runs the cipher and the ICV over the bytes it is
// given, at the offsets the suite implies: [SPI(4)|seq(4)|IV(ivLen)|plaintext…padding|padlen|nh|ICV(icvLen)].
// The symbols resolve against Node's own libcrypto (the addon links no OpenSSL of its own).

// The low-level SHA functions give HMAC without per-packet allocation; they are deprecated in 3.0, not removed.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "cipher.h"

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "natt's native cipher needs the OpenSSL 3 that Node >= 18 carries"
#endif

namespace natt {

static constexpr size_t kDescWords = 4;  // per packet in a batch: offset, length, seq high bits, reserved
static constexpr size_t kHdr = 8;        // SPI + sequence number

// ---- HMAC ----

// One hash's low-level functions, so that key setup and the per-packet MAC are written once for all four.
template <typename Ctx, int (*Init)(Ctx*), int (*Update)(Ctx*, const void*, size_t), int (*Final)(unsigned char*, Ctx*),
          size_t kMd>
struct Sha {
  static bool Pad(Ctx* s, const uint8_t* pad, size_t block) { return Init(s) == 1 && Update(s, pad, block) == 1; }
  static void Mac(const Ctx& inner, const Ctx& outer, const uint8_t* a, size_t aLen, const uint8_t* b, size_t bLen,
                  uint8_t* md) {
    Ctx s = inner;
    Update(&s, a, aLen);
    if (bLen) Update(&s, b, bLen);
    Final(md, &s);
    s = outer;
    Update(&s, md, kMd);
    Final(md, &s);
    OPENSSL_cleanse(&s, sizeof s);  // a key-derived intermediate state does not outlive the call
  }
};
using Sha1 = Sha<SHA_CTX, SHA1_Init, SHA1_Update, SHA1_Final, 20>;
using Sha256 = Sha<SHA256_CTX, SHA256_Init, SHA256_Update, SHA256_Final, 32>;
using Sha384 = Sha<SHA512_CTX, SHA384_Init, SHA384_Update, SHA384_Final, 48>;
using Sha512 = Sha<SHA512_CTX, SHA512_Init, SHA512_Update, SHA512_Final, 64>;

bool Hmac::Init(Hash hash, const uint8_t* key, size_t keyLen) {
  hash_ = hash;
  size_t block = (hash == kSha384 || hash == kSha512) ? 128 : 64;
  mdLen_ = hash == kSha1 ? 20 : hash == kSha256 ? 32 : hash == kSha384 ? 48 : 64;
  uint8_t k[128];
  std::memset(k, 0, sizeof k);
  if (keyLen > block) {  // RFC 2104: a long key is hashed first (ESP keys never are; the code is general)
    switch (hash) {
      case kSha1: SHA1(key, keyLen, k); break;
      case kSha256: SHA256(key, keyLen, k); break;
      case kSha384: SHA384(key, keyLen, k); break;
      case kSha512: SHA512(key, keyLen, k); break;
      default: return false;
    }
  } else {
    std::memcpy(k, key, keyLen);
  }
  uint8_t pad[128];
  bool ok = true;
  for (int round = 0; round < 2 && ok; round++) {
    const uint8_t x = round == 0 ? 0x36 : 0x5c;
    for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ x;
    State& s = round == 0 ? inner_ : outer_;
    switch (hash) {
      case kSha1: ok = Sha1::Pad(&s.s1, pad, block); break;
      case kSha256: ok = Sha256::Pad(&s.s256, pad, block); break;
      case kSha384: ok = Sha384::Pad(&s.s512, pad, block); break;
      case kSha512: ok = Sha512::Pad(&s.s512, pad, block); break;
      default: ok = false;
    }
  }
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  if (!ok) Wipe();
  return ok;
}

void Hmac::Mac(const uint8_t* a, size_t aLen, const uint8_t* b, size_t bLen, uint8_t* md) const {
  switch (hash_) {
    case kSha1: Sha1::Mac(inner_.s1, outer_.s1, a, aLen, b, bLen, md); break;
    case kSha256: Sha256::Mac(inner_.s256, outer_.s256, a, aLen, b, bLen, md); break;
    case kSha384: Sha384::Mac(inner_.s512, outer_.s512, a, aLen, b, bLen, md); break;
    case kSha512: Sha512::Mac(inner_.s512, outer_.s512, a, aLen, b, bLen, md); break;
    default: break;
  }
}

void Hmac::Wipe() {
  OPENSSL_cleanse(&inner_, sizeof inner_);
  OPENSSL_cleanse(&outer_, sizeof outer_);
  hash_ = kNone;
}

// ---- argument helpers (raw N-API: these run per call on the packet path) ----

// A typed array of exactly `want`'s element type: its data and element count.
template <typename T>
static bool TypedArray(napi_env env, napi_value v, napi_typedarray_type want, T** data, size_t* len) {
  napi_typedarray_type type;
  void* p = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, nullptr, nullptr) != napi_ok || type != want) return false;
  *data = static_cast<T*>(p);
  *len = n;
  return true;
}

static bool Bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  return TypedArray(env, v, napi_uint8_array, data, len);
}

static bool Words(napi_env env, napi_value v, uint32_t** data, size_t* len) {
  return TypedArray(env, v, napi_uint32_array, data, len);
}

// An integer in [0, max]; false for anything else (non-numbers, fractions, NaN, out of range).
static bool Index(napi_env env, napi_value v, uint64_t max, uint64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(d >= 0) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

static Napi::Value ThrowRange(Napi::Env env, const char* message) {
  Napi::RangeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// OpenSSL's reason for the last failure (the thread's error queue is then cleared: Node's crypto shares it).
static std::string OpensslReason() {
  unsigned long e = ERR_peek_last_error();
  std::string s = "unknown error";
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s = buf;
  }
  ERR_clear_error();
  return s;
}

static Napi::Value ThrowOpenssl(Napi::Env env, const char* what) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + OpensslReason());
  e.Set("code", Napi::String::New(env, "ERR_NATT_OPENSSL"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

static inline void PutBE32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// ---- the context ----

Napi::Object InitEspCipher(Napi::Env env, NattAddon* addon) {
  Napi::Function ctor = EspCipher::DefineClass(env, "EspCipher",
                                               {
                                                   EspCipher::InstanceMethod("seal", &EspCipher::Seal),
                                                   EspCipher::InstanceMethod("open", &EspCipher::Open),
                                                   EspCipher::InstanceMethod("sealBatch", &EspCipher::SealBatch),
                                                   EspCipher::InstanceMethod("openBatch", &EspCipher::OpenBatch),
                                                   EspCipher::InstanceMethod("free", &EspCipher::FreeJs),
                                               });
  addon->espCipherCtor = Napi::Persistent(ctor);
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("EspCipher", ctor);
  return holder;
}

// The OpenSSL ciphers an ESP suite may name, with the kinds they serve (no other name reaches EVP_CIPHER_fetch).
static bool CipherAllowed(const std::string& name, EspCipher::Kind kind) {
  if (kind == EspCipher::kAead || kind == EspCipher::kGmac) {
    return name == "aes-128-gcm" || name == "aes-192-gcm" || name == "aes-256-gcm" ||
           (kind == EspCipher::kAead && name == "chacha20-poly1305");
  }
  if (kind == EspCipher::kCbc) return name == "aes-128-cbc" || name == "aes-192-cbc" || name == "aes-256-cbc";
  return false;
}

// new EspCipher(kind, cipherName, key, salt, cipherIcvLength, hash, authKey, macIcvLength, esn)
EspCipher::EspCipher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EspCipher>(info) {
  Napi::Env env = info.Env();
  addon_ = env.GetInstanceData<NattAddon>();
  const char* usage =
      "new EspCipher(kind, cipher, key, salt, cipherIcvLength, hash, authKey, macIcvLength, esn): "
      "kind 'aead'|'gmac'|'cbc'|'null', keys as Uint8Arrays";
  if (info.Length() < 9 || !info[0].IsString() || !info[1].IsString() || !info[2].IsTypedArray() ||
      !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsString() ||
      !(info[6].IsTypedArray() || info[6].IsNull() || info[6].IsUndefined()) || !info[7].IsNumber() || !info[8].IsBoolean()) {
    ThrowType(env, usage);
    return;
  }
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  std::string hash = info[5].As<Napi::String>().Utf8Value();
  uint8_t *key = nullptr, *salt = nullptr, *authKey = nullptr;
  size_t keyLen = 0, saltLen = 0, authKeyLen = 0;
  if (!Bytes(env, info[2], &key, &keyLen) || !Bytes(env, info[3], &salt, &saltLen) ||
      (info[6].IsTypedArray() && !Bytes(env, info[6], &authKey, &authKeyLen))) {
    ThrowType(env, usage);
    return;
  }
  double cipherIcv = info[4].As<Napi::Number>().DoubleValue();
  double macIcv = info[7].As<Napi::Number>().DoubleValue();
  esn_ = info[8].As<Napi::Boolean>().Value();

  if (kind == "aead") kind_ = kAead;
  else if (kind == "gmac") kind_ = kGmac;
  else if (kind == "cbc") kind_ = kCbc;
  else if (kind == "null") kind_ = kNull;
  else {
    ThrowRange(env, "EspCipher: kind must be 'aead', 'gmac', 'cbc' or 'null'");
    return;
  }
  Hmac::Hash h = hash == "sha1"     ? Hmac::kSha1
                 : hash == "sha256" ? Hmac::kSha256
                 : hash == "sha384" ? Hmac::kSha384
                 : hash == "sha512" ? Hmac::kSha512
                                    : Hmac::kNone;
  if (!hash.empty() && h == Hmac::kNone) {
    ThrowRange(env, "EspCipher: hash must be 'sha1', 'sha256', 'sha384', 'sha512' or ''");
    return;
  }
  const bool combined = kind_ == kAead || kind_ == kGmac;
  if ((combined && h != Hmac::kNone) || (kind_ == kNull && h == Hmac::kNone) || (h != Hmac::kNone && authKey == nullptr)) {
    ThrowRange(env, "EspCipher: AEAD and GMAC take no HMAC; NULL needs one; an HMAC needs its key");
    return;
  }
  if (kind_ == kNull ? !name.empty() : !CipherAllowed(name, kind_)) {
    ThrowRange(env, "EspCipher: this cipher does not serve this kind of suite");
    return;
  }
  if (combined && saltLen != 4) {
    ThrowRange(env, "EspCipher: AEAD and GMAC take a 4-byte salt");
    return;
  }
  bool chacha = name == "chacha20-poly1305";
  if (combined && !(kind_ == kGmac ? cipherIcv == 16 : chacha ? cipherIcv == 16 : (cipherIcv == 8 || cipherIcv == 12 || cipherIcv == 16))) {
    ThrowRange(env, "EspCipher: ICV length not valid for this cipher");
    return;
  }
  if (!combined && cipherIcv != 0) {
    ThrowRange(env, "EspCipher: only AEAD and GMAC produce an ICV of their own");
    return;
  }
  if (h != Hmac::kNone) {
    size_t md = h == Hmac::kSha1 ? 20 : h == Hmac::kSha256 ? 32 : h == Hmac::kSha384 ? 48 : 64;
    if (!(macIcv >= 4 && macIcv <= static_cast<double>(md) && macIcv == static_cast<double>(static_cast<size_t>(macIcv)))) {
      ThrowRange(env, "EspCipher: macIcvLength must be 4 .. the hash's length");
      return;
    }
  } else if (macIcv != 0) {
    ThrowRange(env, "EspCipher: macIcvLength must be 0 without an HMAC");
    return;
  }
  cipherIcvLen_ = static_cast<size_t>(cipherIcv);
  macIcvLen_ = static_cast<size_t>(macIcv);
  icvLen_ = cipherIcvLen_ + macIcvLen_;
  ivLen_ = kind_ == kCbc ? 16 : kind_ == kNull ? 0 : 8;
  if (combined) std::memcpy(salt_, salt, 4);

  if (kind_ != kNull) {
    cipher_ = EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr);
    if (cipher_ == nullptr) {
      ThrowOpenssl(env, "EVP_CIPHER_fetch");
      Free();
      return;
    }
    if (static_cast<size_t>(EVP_CIPHER_get_key_length(cipher_)) != keyLen) {
      Free();
      ThrowRange(env, "EspCipher: key length does not match the cipher");
      return;
    }
    enc_ = EVP_CIPHER_CTX_new();
    dec_ = EVP_CIPHER_CTX_new();
    // Keyed once here; per packet only the IV is set again (the key schedule is kept).
    if (enc_ == nullptr || dec_ == nullptr || EVP_EncryptInit_ex2(enc_, cipher_, key, nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(dec_, cipher_, key, nullptr, nullptr) != 1 ||
        (kind_ == kCbc && (EVP_CIPHER_CTX_set_padding(enc_, 0) != 1 || EVP_CIPHER_CTX_set_padding(dec_, 0) != 1))) {
      ThrowOpenssl(env, "EVP_CipherInit_ex2");
      Free();
      return;
    }
  }
  if (h != Hmac::kNone && !hmac_.Init(h, authKey, authKeyLen)) {
    ThrowOpenssl(env, "SHA init");
    Free();
    return;
  }
  live_ = true;
  addon_->ciphers.insert(this);
}

EspCipher::~EspCipher() { Free(); }

void EspCipher::Free() {
  // EVP_CIPHER_CTX_free wipes the key schedule (the provider clears its context on free).
  if (enc_) EVP_CIPHER_CTX_free(enc_);
  if (dec_) EVP_CIPHER_CTX_free(dec_);
  if (cipher_) EVP_CIPHER_free(cipher_);
  enc_ = dec_ = nullptr;
  cipher_ = nullptr;
  hmac_.Wipe();
  OPENSSL_cleanse(salt_, sizeof salt_);
  if (live_ && addon_) addon_->ciphers.erase(this);
  live_ = false;
}

Napi::Value EspCipher::FreeJs(const Napi::CallbackInfo& info) {
  Free();
  return info.Env().Undefined();
}

bool EspCipher::LayoutOk(size_t len) const {
  if (len > INT_MAX || len < kHdr + ivLen_ + icvLen_) return false;
  size_t ptLen = len - kHdr - ivLen_ - icvLen_;
  return kind_ != kCbc || ptLen % 16 == 0;
}

// The ESP AAD (RFC 4106 §5, RFC 7634 §2.1, RFC 4543 §3.3) fed into ctx: SPI ‖ [seq high] ‖ seq low, and for GMAC
// also IV ‖ payload ‖ trailer. `ptEnd` ends what GMAC authenticates.
static bool FeedAad(EVP_CIPHER_CTX* ctx, const uint8_t* pkt, size_t ptEnd, uint32_t seqHi, bool esn, bool gmac) {
  int n = 0;
  if (!esn) return EVP_CipherUpdate(ctx, nullptr, &n, pkt, static_cast<int>(gmac ? ptEnd : kHdr)) == 1;
  if (!gmac) {
    uint8_t aad[12];
    std::memcpy(aad, pkt, 4);
    PutBE32(aad + 4, seqHi);
    std::memcpy(aad + 8, pkt + 4, 4);
    return EVP_CipherUpdate(ctx, nullptr, &n, aad, 12) == 1;
  }
  uint8_t hi[4];  // GMAC: the high bits sit between SPI and the rest, which is then authenticated where it lies
  PutBE32(hi, seqHi);
  return EVP_CipherUpdate(ctx, nullptr, &n, pkt, 4) == 1 && EVP_CipherUpdate(ctx, nullptr, &n, hi, 4) == 1 &&
         EVP_CipherUpdate(ctx, nullptr, &n, pkt + 4, static_cast<int>(ptEnd - 4)) == 1;
}

// The AEAD tag out of (seal) or into (open) a context, as one OSSL_PARAM: what EVP_CTRL_AEAD_GET/SET_TAG turn
// into in OpenSSL 3, without the ctrl translation on every packet.
static bool Tag(EVP_CIPHER_CTX* ctx, uint8_t* tag, size_t len, bool set) {
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, len), OSSL_PARAM_construct_end()};
  return (set ? EVP_CIPHER_CTX_set_params(ctx, params) : EVP_CIPHER_CTX_get_params(ctx, params)) == 1;
}

void EspCipher::Icv(const uint8_t* pkt, size_t ptEnd, uint32_t seqHi, uint8_t* md) const {
  // RFC 4303 §2.2.1: with ESN the high bits follow the packet in the ICV input; they are never sent.
  uint8_t hi[4];
  PutBE32(hi, seqHi);
  hmac_.Mac(pkt, ptEnd, hi, esn_ ? 4 : 0, md);
}

// A new AEAD/GMAC message on ctx (keyed once): nonce = salt ‖ the packet's IV (RFC 4106 §4, RFC 7634 §2, written to
// `nonce` for the caller), the tag to check when opening, then the AAD.
bool EspCipher::StartAead(EVP_CIPHER_CTX* ctx, const uint8_t* pkt, size_t ptEnd, uint32_t seqHi, uint8_t* nonce, uint8_t* tag) {
  std::memcpy(nonce, salt_, 4);
  std::memcpy(nonce + 4, pkt + kHdr, 8);
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce, -1, nullptr) != 1) return false;
  if (tag != nullptr && !Tag(ctx, tag, cipherIcvLen_, true)) return false;
  return FeedAad(ctx, pkt, ptEnd, seqHi, esn_, kind_ == kGmac);
}

bool EspCipher::SealOne(uint8_t* pkt, size_t len, uint32_t seqHi) {
  const size_t ptOff = kHdr + ivLen_, ptEnd = len - icvLen_;
  const int ptLen = static_cast<int>(ptEnd - ptOff);
  int n = 0;
  switch (kind_) {
    case kAead:
    case kGmac: {
      uint8_t nonce[12];
      const bool gmac = kind_ == kGmac;
      if (!StartAead(enc_, pkt, ptEnd, seqHi, nonce, nullptr)) return false;
      if (!gmac && (EVP_EncryptUpdate(enc_, pkt + ptOff, &n, pkt + ptOff, ptLen) != 1 || n != ptLen)) return false;
      uint8_t none[16];
      if (EVP_EncryptFinal_ex(enc_, none, &n) != 1 || n != 0) return false;
      return Tag(enc_, pkt + ptEnd, cipherIcvLen_, false);
    }
    case kCbc:
      if (EVP_EncryptInit_ex2(enc_, nullptr, nullptr, pkt + kHdr, nullptr) != 1 ||
          EVP_EncryptUpdate(enc_, pkt + ptOff, &n, pkt + ptOff, ptLen) != 1 || n != ptLen)
        return false;
      [[fallthrough]];
    case kNull: {
      if (macIcvLen_ == 0) return true;  // CBC without integrity (RFC 4303 allows it; natt's SAs rarely do it)
      uint8_t md[64];
      Icv(pkt, ptEnd, seqHi, md);
      std::memcpy(pkt + ptEnd, md, macIcvLen_);
      return true;
    }
  }
  return false;
}

bool EspCipher::OpenOne(uint8_t* pkt, size_t len, uint32_t seqHi, uint8_t* out) {
  const size_t ptOff = kHdr + ivLen_, ptEnd = len - icvLen_;
  const int ptLen = static_cast<int>(ptEnd - ptOff);
  int n = 0;
  switch (kind_) {
    case kAead:
    case kGmac: {
      uint8_t nonce[12];
      const bool gmac = kind_ == kGmac;
      if (!StartAead(dec_, pkt, ptEnd, seqHi, nonce, pkt + ptEnd)) {
        ERR_clear_error();
        return false;
      }
      if (!gmac && (EVP_DecryptUpdate(dec_, out, &n, pkt + ptOff, ptLen) != 1 || n != ptLen)) {
        ERR_clear_error();
        return false;
      }
      uint8_t none[16];
      if (EVP_DecryptFinal_ex(dec_, none, &n) == 1) return true;
      ERR_clear_error();
      if (!gmac && out == pkt + ptOff) {
        // In place and refused: put the ciphertext back (CTR-style: the same keystream XORed again), so the
        // caller's bytes are as they were, whatever the tag said.
        if (EVP_EncryptInit_ex2(enc_, nullptr, nullptr, nonce, nullptr) != 1 || EVP_EncryptUpdate(enc_, out, &n, out, ptLen) != 1)
          ERR_clear_error();
      }
      return false;
    }
    case kCbc:
    case kNull: {
      // Encrypt-then-MAC: the ICV is checked before anything is decrypted.
      if (macIcvLen_ > 0) {
        uint8_t md[64];
        Icv(pkt, ptEnd, seqHi, md);
        int diff = CRYPTO_memcmp(md, pkt + ptEnd, macIcvLen_);
        OPENSSL_cleanse(md, sizeof md);
        if (diff != 0) return false;
      }
      if (kind_ == kNull) return true;
      if (EVP_DecryptInit_ex2(dec_, nullptr, nullptr, pkt + kHdr, nullptr) != 1 ||
          EVP_DecryptUpdate(dec_, out, &n, pkt + ptOff, ptLen) != 1 || n != ptLen) {
        ERR_clear_error();
        return false;
      }
      return true;
    }
  }
  return false;
}

// seal(buf, offset, length, seqHi): one packet in place. Throws on a layout that is not a packet of this suite.
Napi::Value EspCipher::Seal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!live_) return ThrowRange(env, "EspCipher: used after free()");
  uint8_t* buf;
  size_t bufLen;
  uint64_t off, len, hi;
  if (info.Length() < 4 || !Bytes(env, info[0], &buf, &bufLen)) return ThrowType(env, "seal(buf: Uint8Array, offset, length, seqHi)");
  if (!Index(env, info[1], bufLen, &off) || !Index(env, info[2], bufLen - off, &len) || !Index(env, info[3], 0xffffffffu, &hi) ||
      !LayoutOk(len))
    return ThrowRange(env, "seal: offset/length are not a packet of this suite inside buf, or seqHi is not a uint32");
  if (!SealOne(buf + off, len, static_cast<uint32_t>(hi))) return ThrowOpenssl(env, "seal");
  return env.Undefined();
}

// open(buf, offset, length, seqHi, out, outOffset) → authenticated? Plaintext to out at outOffset (out === buf at the
// packet's own plaintext offset: in place). GMAC and NULL decrypt nothing and ignore out.
Napi::Value EspCipher::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!live_) return ThrowRange(env, "EspCipher: used after free()");
  uint8_t *buf, *out;
  size_t bufLen, outLen;
  uint64_t off, len, hi, outOff;
  if (info.Length() < 6 || !Bytes(env, info[0], &buf, &bufLen) || !Bytes(env, info[4], &out, &outLen))
    return ThrowType(env, "open(buf: Uint8Array, offset, length, seqHi, out: Uint8Array, outOffset)");
  if (!Index(env, info[1], bufLen, &off) || !Index(env, info[2], bufLen - off, &len) || !Index(env, info[3], 0xffffffffu, &hi) ||
      !LayoutOk(len) || !Index(env, info[5], outLen, &outOff))
    return ThrowRange(env, "open: offset/length are not a packet of this suite inside buf, or seqHi is not a uint32");
  uint8_t* pkt = buf + off;
  const size_t ptLen = len - kHdr - ivLen_ - icvLen_;
  uint8_t* dst = out + outOff;
  if (kind_ == kAead || kind_ == kCbc) {
    // The plaintext goes exactly over the ciphertext, or somewhere that does not touch the packet at all.
    const uintptr_t d = reinterpret_cast<uintptr_t>(dst), p = reinterpret_cast<uintptr_t>(pkt);
    bool inPlace = d == p + kHdr + ivLen_;
    bool disjoint = d + ptLen <= p || d >= p + len;
    if (outLen - outOff < ptLen || !(inPlace || disjoint))
      return ThrowRange(env, "open: out has no room for the plaintext, or overlaps the packet other than in place");
  }
  return Napi::Boolean::New(env, OpenOne(pkt, len, static_cast<uint32_t>(hi), dst));
}

// sealBatch / openBatch(slab, desc, count, status) → packets done. desc: kDescWords per packet (offset, length,
// seq high, 0). Only packets whose status is kPending are touched; each gets kOk, kAuthFailed (open), kBadLayout or
// kFailed. One call per batch, no allocation.
Napi::Value EspCipher::Batch(const Napi::CallbackInfo& info, bool seal) {
  Napi::Env env = info.Env();
  if (!live_) return ThrowRange(env, "EspCipher: used after free()");
  uint8_t *slab, *status;
  uint32_t* desc;
  size_t slabLen, descLen, statusLen;
  uint64_t count;
  if (info.Length() < 4 || !Bytes(env, info[0], &slab, &slabLen) || !Words(env, info[1], &desc, &descLen) ||
      !Bytes(env, info[3], &status, &statusLen))
    return ThrowType(env, "sealBatch/openBatch(slab: Uint8Array, desc: Uint32Array, count, status: Uint8Array)");
  if (!Index(env, info[2], statusLen < descLen / kDescWords ? statusLen : descLen / kDescWords, &count))
    return ThrowRange(env, "batch: count exceeds the descriptors or the status array");
  uint32_t done = 0;
  for (size_t i = 0; i < count; i++) {
    if (status[i] != kPending) continue;
    const uint32_t* d = desc + i * kDescWords;
    const size_t off = d[0], len = d[1];
    if (off > slabLen || len > slabLen - off || !LayoutOk(len)) {
      status[i] = kBadLayout;
      continue;
    }
    uint8_t* pkt = slab + off;
    bool ok = seal ? SealOne(pkt, len, d[2]) : OpenOne(pkt, len, d[2], pkt + kHdr + ivLen_);
    if (seal && !ok) ERR_clear_error();
    status[i] = static_cast<uint8_t>(ok ? kOk : seal ? kFailed : kAuthFailed);
    done += ok;
  }
  return Napi::Number::New(env, done);
}

Napi::Value EspCipher::SealBatch(const Napi::CallbackInfo& info) { return Batch(info, true); }
Napi::Value EspCipher::OpenBatch(const Napi::CallbackInfo& info) { return Batch(info, false); }

}  // namespace natt
