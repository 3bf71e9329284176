#!/usr/bin/env node
// The README's algorithm tables, derived from the one algorithm table (src/sadb/algorithms.ts): --write updates README.md, --check fails when it differs.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const README = path.join(root, 'README.md');
const BEGIN = '<!-- algorithms:begin (scripts/algorithms.js writes this table from src/sadb/algorithms.ts) -->';
const END = '<!-- algorithms:end -->';

/**
 * The markdown of both tables: from the given modules (the test passes src/'s), else from the compiled model (dist/:
 * `npm run compile` first).
 */
function tables(model = require(path.join(root, 'dist', 'sadb', 'algorithms.js')), xfrm = require(path.join(root, 'dist', 'xfrm', 'algorithms.js'))) {
  const { ENCRYPTION, INTEGRITY } = model;
  const yes = (b) => (b ? 'yes' : 'no (kernel backends only)');
  const lines = [
    '| encryption | kind | KEYMAT bytes | IV | ICV | XFRM template | userland engine | defined by |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, e] of Object.entries(ENCRYPTION)) {
    const keys = e.keyBytes.join(' / ') + (e.saltBytes ? ` (key + ${e.saltBytes}-byte salt)` : '');
    lines.push(`| \`${name}\` | ${e.kind} | ${keys} | ${e.ivBytes} | ${e.icvBytes || '–'} | \`${xfrm.ENCRYPTION[name].name}\` | ${yes(e.userland)} | ${e.rfc} |`);
  }
  lines.push('', '| integrity | key bytes | ICV | XFRM template | userland engine | defined by |', '|---|---|---|---|---|---|');
  for (const [name, i] of Object.entries(INTEGRITY)) {
    const t = xfrm.INTEGRITY[name];
    lines.push(`| \`${name}\` | ${i.keyBytes.join(' / ')} | ${i.icvBytes} | \`${t.name}\`/${t.truncBits} | ${yes(i.userland)} | ${i.rfc} |`);
  }
  return lines.join('\n');
}

/** README.md with the block between the markers replaced by `body`. */
function withTables(text, body) {
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${BEGIN} ... ${END}`);
  return `${text.slice(0, a + BEGIN.length)}\n${body}\n${text.slice(b)}`;
}

if (require.main === module) {
  const mode = process.argv[2] ?? '--print';
  if (mode === '--print') {
    console.log(tables());
    process.exit(0);
  }
  const text = fs.readFileSync(README, 'utf8');
  const next = withTables(text, tables());
  if (mode === '--write') fs.writeFileSync(README, next);
  else if (mode === '--check') {
    if (next !== text) {
      console.error('README.md: the algorithm tables differ from src/sadb/algorithms.ts: run node scripts/algorithms.js --write');
      process.exit(1);
    }
  }
}

module.exports = { tables, withTables, BEGIN, END };
