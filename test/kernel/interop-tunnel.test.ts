// A `natt tunnel up` daemon on the host ⇄ the guest kernel's XFRM in tunnel mode, across slirp's NAT: ping, TCP both ways.
import { describe } from 'vitest';
import { defineTunnelSuite, tunnelMissing } from './lib/tunnel';

const MIB = 1024 * 1024;

// vitest awaits an async suite body while collecting: whether the host side can run is asked of the host peer here,
// and each suite's title carries the reason when it cannot.
describe('natt tunnel ⇄ guest kernel', async () => {
  const missing = await tunnelMissing();
  defineTunnelSuite({ encryption: { algorithm: 'aes-gcm-16', keyBytes: 20 }, bytes: 4 * MIB, moveMapping: true }, missing);
  defineTunnelSuite(
    { encryption: { algorithm: 'aes-cbc', keyBytes: 16 }, integrity: { algorithm: 'hmac-sha2-256-128', keyBytes: 32 }, bytes: 1 * MIB, moveMapping: false },
    missing,
  );
});
