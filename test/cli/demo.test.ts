// `npm start` (scripts/demo.js, on the compiled package): exits 0 after IKE, keepalives and encrypted traffic went both ways.

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const built = existsSync(join(root, 'dist', 'index.js'));

describe.skipIf(!built)(`npm start's demo${built ? '' : ' (skipped: dist/ not built; npm test compiles it first)'}`, () => {
  it('exits 0 and reports IKE, keepalives and ESP in both directions, and the forged datagram counted', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'demo.js')], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('IKE and keepalives went both ways.');
    expect(r.stdout).toMatch(/alice +sent 1 IKE \+ 1 keepalive; received 1 IKE, 1 keepalive/);
    expect(r.stdout).toMatch(/bob +sent 1 IKE \+ 1 keepalive; received 1 IKE, 1 keepalive/);
    for (const i of [1, 2, 3]) {
      expect(r.stdout).toContain(`payload "ping ${i}"`);
      expect(r.stdout).toContain(`payload "pong ${i}"`);
    }
    expect(r.stdout).toContain('plaintext not visible: true');
    expect(r.stdout).toContain('Encrypted traffic went both ways; the forged datagram was counted as InStateProtoError.');
  });
});
