#!/usr/bin/env node
// The CLI entry: the one place that touches process streams and exits.
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
process.exitCode = code;
