// classify() against the shared input table, plus properties that hold for every input.

import { describe, expect, it } from 'vitest';
import { classify } from '../../src/natt/demux';
import { rows } from './table';

describe('classify (the shared table)', () => {
  for (const row of rows) {
    it(`${row.encap}: ${row.name}`, () => {
      expect(classify(row.bytes, row.encap)).toEqual(row.expect);
    });
  }
});

describe('classify on every short input', () => {
  it('never throws and never calls 1..8-byte SPI-shaped data ESP (Linux needs more than 8 bytes)', () => {
    for (let len = 0; len <= 8; len++) {
      for (const fill of [0x00, 0x01, 0xff]) {
        const buf = Buffer.alloc(len, fill);
        for (const encap of ['espinudp', 'espinudp-non-ike'] as const) {
          const c = classify(buf, encap);
          expect(c.kind).not.toBe('esp');
          if (c.kind === 'ike') expect(c.offset).toBeLessThan(len);
        }
      }
    }
  });

  it('defaults to espinudp', () => {
    expect(classify(Buffer.from([0, 0, 0, 0, 1]))).toEqual({ kind: 'ike', offset: 4 });
  });
});
