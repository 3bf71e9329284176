// The README's algorithm tables are derived from the one algorithm table (src/sadb/algorithms.ts), never written by hand.

import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as model from '../../src/sadb/algorithms';
import * as xfrm from '../../src/xfrm/algorithms';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require('../../scripts/algorithms.js') as {
  tables(m: unknown, x: unknown): string;
  withTables(text: string, body: string): string;
};

describe('README algorithm tables', () => {
  it('equal what scripts/algorithms.js derives from src/sadb/algorithms.ts (node scripts/algorithms.js --write updates them)', () => {
    const text = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    expect(gen.withTables(text, gen.tables(model, xfrm))).toBe(text);
  });
  it('list every algorithm of the model, each once', () => {
    const body = gen.tables(model, xfrm);
    for (const name of [...Object.keys(model.ENCRYPTION), ...Object.keys(model.INTEGRITY)]) {
      expect(body.split('\n').filter((l) => l.startsWith(`| \`${name}\` |`))).toHaveLength(1);
    }
  });
});
