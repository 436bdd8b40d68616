#!/usr/bin/env node
/** The `warden` command. Each subcommand lives in its own file. */
import { Command } from 'commander';
import { registerDemoCommand } from './demo.js';
import { registerServeCommand } from './serve.js';

const program = new Command()
  .name('warden')
  .description('Warden: a security gateway for the Model Context Protocol')
  .version('0.1.0');

registerServeCommand(program);
registerDemoCommand(program);

await program.parseAsync(process.argv);
