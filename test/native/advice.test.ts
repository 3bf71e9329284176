// Errors reach JS in Node's shape with advice: the advice table, withAdvice(), and a real EACCES as an unprivileged user.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { adviceFor, withAdvice } from '../../src/native/advice';
import { loadNative, nativeStatus } from '../../src/native/binding';
import { NattSystemError } from '../../src/errors';

describe('adviceFor', () => {
  const cases: [string, Parameters<typeof adviceFor>[1], Parameters<typeof adviceFor>[2], RegExp][] = [
    ['EPERM', 'pfkey', {}, /CAP_NET_ADMIN/],
    ['EPERM', 'xfrm', {}, /CAP_NET_ADMIN/],
    ['EACCES', 'udp', { port: 500 }, /CAP_NET_BIND_SERVICE/],
    ['EAFNOSUPPORT', 'pfkey', {}, /CONFIG_NET_KEY.*modprobe af_key/],
    ['EPROTONOSUPPORT', 'xfrm', {}, /CONFIG_XFRM_USER/],
    ['ENOPROTOOPT', 'udp-encap', { encapType: 1 }, /non-IKE.*6\.10 removed it/],
    ['ENOPROTOOPT', 'udp-encap', { encapType: 2 }, /CONFIG_XFRM|UDP_ENCAP/],
    ['EADDRINUSE', 'udp', { port: 4500 }, /port 4500.*pick another port or stop it/],
    ['ENOENT', 'tun', {}, /CONFIG_TUN/],
    ['EMSGSIZE', 'pfkey', {}, /256 KiB/],
  ];
  for (const [code, ctx, details, re] of cases) {
    it(`${code} on ${ctx} ${JSON.stringify(details)} says what to do`, () => expect(adviceFor(code, ctx, details)).toMatch(re));
  }
  it('has nothing to add for an errno it does not know', () => expect(adviceFor('ESPIPE', 'udp')).toBeUndefined());
});

describe('withAdvice', () => {
  it('turns a Node-shaped error into a NattSystemError keeping code, negative errno, syscall and the cause', () => {
    const raw = Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE', errno: -98, syscall: 'bind' });
    const e = withAdvice(raw, 'udp', { port: 4500 }) as NattSystemError;
    expect(e).toBeInstanceOf(NattSystemError);
    expect(e).toMatchObject({ code: 'EADDRINUSE', errno: -98, syscall: 'bind', cause: raw });
    expect(e.message).toBe('bind failed: EADDRINUSE: ' + adviceFor('EADDRINUSE', 'udp', { port: 4500 }));
  });
  it('leaves other errors alone', () => {
    const t = new TypeError('x');
    expect(withAdvice(t, 'udp')).toBe(t);
    expect(withAdvice(null, 'udp')).toBe(null);
  });
});

const native = loadNative();
const isRoot = process.getuid?.() === 0;
describe.skipIf(!native || !isRoot)(
  `as an unprivileged user (uid 65534)${!native ? ' (skipped: native addon not loaded)' : !isRoot ? ' (skipped: needs root to switch user)' : ''}`,
  () => {
    it('binding the privileged port 500 fails with EACCES in Node shape from the addon', () => {
      const code = `const a = require(process.argv[1]);
        try { a.openEncapSocket(4, '127.0.0.1', 500, 2); console.log('{}'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })); }`;
      const r = spawnSync(process.execPath, ['-e', code, nativeStatus().path!], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 });
      const e = JSON.parse(r.stdout);
      expect(e).toMatchObject({ code: 'EACCES', errno: -13, syscall: 'bind' });
      expect(adviceFor(e.code, 'udp-encap', { port: 500 })).toMatch(/privileged/);
    });
  },
);
