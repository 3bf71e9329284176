// Reading the kernel's text files for probe(): the whole file as latin1 (gunzipped for .gz), or undefined when absent.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

/** The file's text, or undefined when it cannot be read. */
export function readText(file: string): string | undefined {
  try {
    const data = fs.readFileSync(file);
    return file.endsWith('.gz') ? zlib.gunzipSync(data).toString('latin1') : data.toString('latin1');
  } catch {
    return undefined;
  }
}
