// charon-cmd for tests: its own strongswan.conf, so what plugins the host happens to have cannot change what it sends.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * charon-cmd's strongswan.conf: an explicit plugin list (where strongSwan's kernel-libipsec plugin is installed, as
 * Debian's libcharon-extra-plugins does, charon-cmd would load it, and userspace ESP makes it fake its NAT-D source
 * hash so that every path looks NATed) and the standard ports 500 and 4500.
 */
export const CHARON_CONF = join(mkdtempSync(join(tmpdir(), 'natt-charon-')), 'strongswan.conf');
writeFileSync(
  CHARON_CONF,
  'charon-cmd {\n  load_modular = no\n  load = random nonce openssl pem pkcs1 x509 pubkey kernel-netlink socket-default eap-identity eap-md5 kdf\n  port = 500\n  port_nat_t = 4500\n}\n',
);
