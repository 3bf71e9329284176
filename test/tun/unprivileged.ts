// Run as uid 65534 by native.test.ts: what createTun and the rtnetlink client say without CAP_NET_ADMIN (one JSON line).

import { createTun } from '../../src/tun';
import { Rtnetlink } from '../../src/rtnetlink';

const shape = (e: any) => ({ name: e?.constructor?.name, code: e?.code, errno: e?.errno, syscall: e?.syscall, message: String(e?.message) });

(async () => {
  process.setuid!(65534);
  const out: Record<string, unknown> = { uid: process.getuid!() };
  out.tun = await createTun({ name: 'nattnobody' }).then(
    async (t) => (await t.close(), 'created?!'),
    shape,
  );
  const rt = await Rtnetlink.open();
  out.list = (await (async () => {
    const names: string[] = [];
    for await (const l of rt.links()) names.push(l.name);
    return names;
  })()).includes('lo');
  out.setLink = await rt.setLink('lo', { mtu: 65536 }).then(() => 'changed?!', shape);
  rt.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
})().catch((e) => process.stdout.write(`${JSON.stringify({ fatal: shape(e) })}\n`));
