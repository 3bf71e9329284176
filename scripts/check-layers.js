#!/usr/bin/env node
// The house's rules, checked on src/: every import goes to the same floor or lower, no import circle, no forbidden arrow.
//
// Floors are per folder (a file directly under src/ is its own room); docs/architecture.md explains each. Every import
// counts, `import type` and dynamic import() included. Exit 1 with one line per breach; `--graph` prints the arrows.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const SRC = path.join(__dirname, '..', 'src');

/** Floor of each room (a folder under src/, or a file directly in src/). Keep in step with docs/architecture.md. */
const FLOORS = {
  'errors.ts': 0,
  core: 0,
  sadb: 1,
  ip: 1,
  native: 1,
  transport: 1,
  probe: 2,
  kernel: 2,
  esp: 2,
  setkey: 2,
  pfkey: 3,
  xfrm: 3,
  rtnetlink: 3,
  natt: 3,
  tcp: 3,
  tun: 3,
  fastpath: 3,
  capture: 3,
  userland: 4,
  control: 4,
  ike: 4,
  tunnel: 5,
  'open.ts': 6,
  daemon: 6,
  cli: 7,
  'index.ts': 8,
};

/** Arrows that must never exist, whatever the floors say: [from room (or file prefix), to room, why]. */
const FORBIDDEN = [
  ['esp', 'native', 'ESP works without the addon: the fast path (src/fastpath/) sits above both'],
  ['pfkey/codec.ts', 'esp', 'a codec knows no userland crypto'],
  ['pfkey/codec.ts', 'userland', 'a codec knows no userland engine'],
  ['xfrm/codec.ts', 'esp', 'a codec knows no userland crypto'],
  ['xfrm/codec.ts', 'userland', 'a codec knows no userland engine'],
  ['xfrm/structs.ts', 'esp', 'a codec knows no userland crypto'],
  ['xfrm/structs.ts', 'userland', 'a codec knows no userland engine'],
  ['rtnetlink', 'esp', 'a codec knows no userland crypto'],
  ['rtnetlink', 'userland', 'a codec knows no userland engine'],
  ['natt', 'userland', 'the NAT-T socket knows no SA database'],
  ['natt', 'pfkey', 'the NAT-T socket knows no SA database'],
  ['natt', 'xfrm', 'the NAT-T socket knows no SA database'],
];

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function roomOf(rel) {
  const first = rel.split('/')[0];
  return first;
}

/** Every module specifier a file imports (static, type-only, re-exports, dynamic import(), require()). */
function specifiers(text) {
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out = [];
  const re = /\b(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\bfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;
  let m;
  while ((m = re.exec(noComments))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function resolve(fromFile, spec) {
  if (!spec.startsWith('.')) return null; // node: built-ins and packages
  const base = path.resolve(path.dirname(fromFile), spec);
  for (const cand of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(cand)) return cand;
  return undefined;
}

function main() {
  const files = walk(SRC);
  const edges = new Map();
  const problems = [];
  for (const f of files) {
    const rel = path.relative(SRC, f).split(path.sep).join('/');
    const room = roomOf(rel);
    if (!(room in FLOORS)) problems.push(`${rel}: room '${room}' has no floor (add it to scripts/check-layers.js and docs/architecture.md)`);
    const targets = new Set();
    for (const spec of specifiers(fs.readFileSync(f, 'utf8'))) {
      const to = resolve(f, spec);
      if (to === null) continue;
      if (to === undefined) {
        problems.push(`${rel}: cannot resolve import '${spec}'`);
        continue;
      }
      const toRel = path.relative(SRC, to).split(path.sep).join('/');
      targets.add(toRel);
      const toRoom = roomOf(toRel);
      if (toRoom === room) continue;
      const a = FLOORS[room];
      const b = FLOORS[toRoom];
      if (a !== undefined && b !== undefined && b > a) {
        problems.push(`${rel} (floor ${a}) imports ${toRel} (floor ${b}): an arrow that runs back up`);
      }
      for (const [from, toR, why] of FORBIDDEN) {
        if ((rel === from || rel.startsWith(`${from}/`)) && toRoom === toR) problems.push(`${rel} imports ${toRel}: forbidden (${why})`);
      }
      if (toRoom === 'cli' && room !== 'cli') problems.push(`${rel} imports ${toRel}: the library never imports its CLI`);
    }
    edges.set(rel, targets);
  }
  // Circles between files (Tarjan's strongly connected components).
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const circles = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) circles.push(comp.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) strong(v);
  for (const c of circles) problems.push(`import circle: ${c.join(' -> ')}`);

  if (process.argv.includes('--graph')) {
    for (const [from, tos] of [...edges].sort()) for (const to of [...tos].sort()) console.log(`${from} -> ${to}`);
  }
  if (problems.length) {
    for (const p of problems) console.error(p);
    console.error(`check-layers: ${problems.length} problem(s) in ${files.length} files`);
    process.exit(1);
  }
  console.log(`check-layers: ${files.length} files, ${[...edges.values()].reduce((n, s) => n + s.size, 0)} imports: no circle, no arrow up, none forbidden`);
}

main();
