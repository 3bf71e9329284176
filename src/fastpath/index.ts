// The fast path's public surface: the native ESP cipher, its availability, and createEspTransform() that picks it.

export {
  NativeEspCipher,
  nativeEspCipherFactory,
  nativeCipherStatus,
  createEspTransform,
  type EspCipherChoice,
  type FastEspTransformOptions,
  type NativeCipherStatus,
} from './cipher';
