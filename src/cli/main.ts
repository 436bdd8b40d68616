#!/usr/bin/env node
/** The `warden` command. Each subcommand lives in its own file. */
import { Command } from 'commander';
import { registerAgentsCommand } from './agents.js';
import { registerAlertsCommand } from './alerts.js';
import { registerApprovalsCommand } from './approvals.js';
import { registerAuditCommand } from './audit.js';
import { registerCertsCommand } from './certs.js';
import { registerConfigCommand } from './config.js';
import { registerDemoCommand } from './demo.js';
import { registerDoctorCommand } from './doctor.js';
import { registerGrantCommand } from './grant.js';
import { registerKeysCommand } from './keys.js';
import { registerPolicyCommand } from './policy.js';
import { registerServeCommand } from './serve.js';
import { registerTokenCommand } from './token.js';
import { applyV8Workarounds } from '../gateway/v8-workarounds.js';
import { registerToolsCommand } from './tools.js';
import { registerUsersCommand } from './users.js';

applyV8Workarounds();

const program = new Command()
  .name('warden')
  .description('Warden: a security gateway for the Model Context Protocol')
  .version('0.1.0');

registerServeCommand(program);
registerConfigCommand(program);
registerDemoCommand(program);
registerDoctorCommand(program);
registerTokenCommand(program);
registerKeysCommand(program);
registerAgentsCommand(program);
registerCertsCommand(program);
registerAuditCommand(program);
registerApprovalsCommand(program);
registerPolicyCommand(program);
registerGrantCommand(program);
registerToolsCommand(program);
registerUsersCommand(program);
registerAlertsCommand(program);

await program.parseAsync(process.argv);
