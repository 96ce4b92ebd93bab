import { createRequire } from 'node:module';
import { Command } from 'commander';
import { addAllowCommands } from './allow.js';
import { addAuditCommands } from './audit.js';
import { addBackendCommands } from './backend.js';
import { addDoctorCommand } from './doctor.js';
import { addGroupCommands } from './group.js';
import { addHookCommands } from './hook.js';
import { addHostCommands } from './host.js';
import type { CliIo } from './io.js';
import { addPlacementCommands } from './placement.js';
import { addRenderCommands } from './render.js';
import { addSchemaCommand } from './schema.js';
import { addSshCommands } from './ssh.js';
import { addValidateCommand } from './validate.js';

/** The package version, shown by `--version` (read from package.json, two levels up in src/ and dist/). */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * Build the `ticrypt-net` command tree. Commands write through `io` and throw
 * on failure; they never print elsewhere or exit (that is `runCli`'s job).
 */
export function createProgram(io: CliIo): Command {
  const program = new Command('ticrypt-net')
    .description('Open vSwitch based VM networking for tiCrypt')
    .version(VERSION)
    .option('--json', 'machine-readable JSON output')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) })
    .showHelpAfterError(false);
  addRenderCommands(program, io);
  addValidateCommand(program, io);
  addSchemaCommand(program, io);
  addBackendCommands(program, io);
  addAllowCommands(program, io);
  addPlacementCommands(program, io);
  addGroupCommands(program, io);
  addSshCommands(program, io);
  addHostCommands(program, io);
  addDoctorCommand(program, io);
  addHookCommands(program, io);
  addAuditCommands(program, io);
  for (const command of program.commands) propagate(command);
  return program;
}

/** Subcommands throw instead of exiting, and write through the same io. */
function propagate(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) propagate(sub);
}
