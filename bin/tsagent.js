#!/usr/bin/env node
'use strict';
const { main } = require('../dist/bundle/cli/tsagent.js');

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
