// The README's TypeScript examples compile: every ```ts block, against the library's own types (`natt` → src/index.ts).

import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

const root = path.join(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Each ```ts block, with its line in the README. */
function blocks(): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const re = /^```ts\n([\s\S]*?)^```/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(readme))) out.push({ line: readme.slice(0, m.index).split('\n').length, code: m[1] });
  return out;
}

/**
 * One module per block: its import lines at the top, the rest inside an async function (so top-level await and
 * free names used for illustration work); names the README leaves to the reader are declared as `any`.
 */
function moduleOf(code: string): string {
  const lines = code.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l));
  const body = lines.filter((l) => !/^import\s/.test(l));
  return `${imports.join('\n')}\n// Names the examples leave to the reader.\ndeclare const ikeMessage: Buffer, innerPacket: Buffer, keymat20: Buffer, keymat36: Buffer, packet: Buffer;\ndeclare function use(...a: unknown[]): void;\ndeclare function counted(...a: unknown[]): void;\nexport async function example(): Promise<void> {\n${body.join('\n')}\n}\n`;
}

describe('README examples', () => {
  const found = blocks();
  it('has TypeScript examples (quick start, ESP over TCP, the tunnel and daemon)', () => expect(found.length).toBeGreaterThanOrEqual(3));
  it('every ```ts block compiles with tsc against the library', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-readme-'));
    const files = found.map((b, i) => {
      const f = path.join(dir, `block${i}-line${b.line}.ts`);
      fs.writeFileSync(f, moduleOf(b.code));
      return f;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      typeRoots: [path.join(root, 'node_modules', '@types')],
      baseUrl: root,
      paths: { natt: [path.join(root, 'src', 'index.ts')] },
      noUnusedLocals: false,
    });
    const diags = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(d.file.fileName));
    const text = diags.map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
      return `${path.basename(d.file!.fileName)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(text).toEqual([]);
  }, 120_000);
});
