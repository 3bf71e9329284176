// Bundle a TypeScript driver (and the src/ it imports) into one .js file that a child `node` can run, with esbuild.

import * as path from 'node:path';

/** Bundle `entry` to `outfile`; the addon loader inside finds the package root as it does from src/native. */
export async function bundleDriver(entry: string, outfile: string): Promise<string> {
  const { buildSync } = await import('esbuild');
  buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    outfile,
    logLevel: 'error',
    // The addon loader finds the package root from its own directory.
    define: { __dirname: JSON.stringify(path.resolve(__dirname, '../../src/native')) },
  });
  return outfile;
}
