// Interop across slirp's NAT: guest kernel ESP (AES-GCM-16, SAs from natt's XFRM client) ⇄ host UserlandEngine.
import { defineInteropSuite } from './lib/interop';

defineInteropSuite({
  backend: 'xfrm',
  encryption: { algorithm: 'aes-gcm-16', keyBytes: 20 },
});
