// Interop across slirp's NAT: guest kernel ESP (AES-CBC + HMAC-SHA1, SAs from natt's PF_KEY client) ⇄ host UserlandEngine.
import { defineInteropSuite } from './lib/interop';

defineInteropSuite({
  backend: 'pfkey',
  encryption: { algorithm: 'aes-cbc', keyBytes: 16 },
  integrity: { algorithm: 'hmac-sha1-96', keyBytes: 20 },
});
