#!/usr/bin/env node
'use strict';
// The start path is kept short (issue 16): the daemon's V8 flags, then the one-file bundle
// of the CLI, compiled with the code cache `npm run build` made for it.
const { join } = require('node:path');
const { setFlagsFromString } = require('node:v8');
const { V8_FLAGS, loadBundle } = require('../dist/src/cli/bundle-loader.js');

for (const flag of V8_FLAGS) setFlagsFromString(flag);
const { main } = loadBundle(join(__dirname, '../dist/bundle/cli/tsagent.js')).exports;

main(process.argv, {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
  exit: (code) => process.exit(code),
  script: __filename,
}).catch((err) => {
  process.stderr.write(`tsagent: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
