/**
 * `warden agents hash-secret`: reads an agent's client secret from stdin and prints the hash to
 * put in `agents.<id>.secret_hash`. The secret is never a command-line argument, so it stays out
 * of the shell history and the process list.
 */
import type { Command } from 'commander';
import { runCliAction, UsageError } from './operator.js';

export function registerAgentsCommand(program: Command): void {
  const agents = program.command('agents').description('manage agent credentials');

  agents
    .command('hash-secret')
    .description('read a client secret from stdin and print its scrypt hash for secret_hash')
    .action(() =>
      runCliAction(async () => {
        if (process.stdin.isTTY) process.stderr.write('client secret (then Enter and Ctrl-D): ');
        const secret = (await readStdin()).replace(/\r?\n$/, '');
        if (secret.length === 0) throw new UsageError('no secret on stdin');
        const { hashClientSecret } = await import('../identity/client-authentication.js');
        process.stdout.write(`${await hashClientSecret(secret)}\n`);
      }),
    );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
