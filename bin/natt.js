#!/usr/bin/env node
// CLI launcher: runs the compiled command line in dist/cli/main.js.
'use strict';
Promise.resolve(require('../dist/cli/main.js').main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
