import type { Command } from 'commander';
import { siteJsonSchema } from '../site/json-schema.js';
import { type CliIo, toJson } from './io.js';

/** `ticrypt-net schema`: print the site file's JSON Schema. */
export function addSchemaCommand(program: Command, io: CliIo): void {
  program
    .command('schema')
    .description('Print a JSON Schema of the site file, for editors')
    .action(() => {
      io.out(toJson(siteJsonSchema()));
    });
}
