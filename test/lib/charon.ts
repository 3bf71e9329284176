// charon-cmd for tests: the environment that makes it use the kernel interface only (not strongSwan's libipsec).

import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let conf: string | undefined;

/**
 * The env to spawn charon-cmd with. Where strongSwan's kernel-libipsec plugin is installed (Debian's
 * libcharon-extra-plugins) charon-cmd loads it, and userspace ESP makes it fake its NAT-D source hash so that every
 * path looks NATed (the forceencaps trick), which would hide a routed, NAT-free case. A strongswan.conf of our own
 * turns the plugin off.
 */
export function charonCmdEnv(): NodeJS.ProcessEnv {
  if (!conf) {
    conf = join(tmpdir(), `natt-charon-cmd-${process.pid}.conf`);
    writeFileSync(conf, 'charon-cmd {\n  plugins {\n    kernel-libipsec {\n      load = no\n    }\n  }\n}\n');
  }
  return { ...process.env, STRONGSWAN_CONF: conf };
}
