/**
 * `warden users hash-password`: reads a built-in user's password and prints the hash to put in
 * `auth.login.users.<id>.password_hash`. The password is never a command-line argument, so it
 * stays out of the shell history and the process list; typed at a terminal it is not echoed and
 * is asked for twice. Piped in, one trailing newline is dropped.
 */
import type { Command } from 'commander';
import { runCliAction, UsageError } from './operator.js';

export function registerUsersCommand(program: Command): void {
  const users = program.command('users').description('manage built-in users (auth.login.users)');

  users
    .command('hash-password')
    .description('read a password from stdin (or a prompt) and print its scrypt hash')
    .action(() =>
      runCliAction(() => printPasswordHash(process.stdin, process.stdout, process.stderr)),
    );
}

type PasswordInput = NodeJS.ReadableStream & {
  readonly isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
};

/** The command itself, on any streams (tests call it with their own). */
export async function printPasswordHash(
  input: PasswordInput,
  output: NodeJS.WritableStream,
  prompts: NodeJS.WritableStream,
): Promise<void> {
  let password: string;
  if (input.isTTY === true && input.setRawMode) {
    password = await promptHidden(input, prompts, 'password: ');
    const again = await promptHidden(input, prompts, 'again: ');
    if (again !== password) throw new UsageError('the two passwords differ');
  } else {
    password = (await readAll(input)).replace(/\r?\n$/, '');
  }
  if (password.length === 0) throw new UsageError('no password on stdin');
  const { BuiltinUserError, hashPassword } = await import('../identity/login/builtin-users.js');
  try {
    output.write(`${await hashPassword(password)}\n`);
  } catch (error) {
    if (error instanceof BuiltinUserError) throw new UsageError(error.message);
    throw error;
  }
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input as AsyncIterable<Buffer | string>)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** One line from a terminal in raw mode, so the characters are not echoed. */
function promptHidden(
  input: PasswordInput,
  prompts: NodeJS.WritableStream,
  question: string,
): Promise<string> {
  prompts.write(question);
  input.setRawMode?.(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (error?: Error): void => {
      input.removeListener('data', onData);
      input.setRawMode?.(false);
      input.pause();
      prompts.write('\n');
      if (error) reject(error);
      else resolve(line);
    };
    const onData = (chunk: Buffer | string): void => {
      const chars = [...chunk.toString()];
      for (const [index, char] of chars.entries()) {
        const done = char === '\r' || char === '\n' || char === '\u0004';
        if (done || char === '\u0003') {
          finish(done ? undefined : new UsageError('cancelled'));
          // What was typed (or pasted) after Enter answers the next prompt.
          const rest = chars.slice(index + 1).join('');
          if (rest !== '') input.unshift(Buffer.from(rest));
          return;
        }
        if (char === '\u007f' || char === '\b') line = [...line].slice(0, -1).join('');
        else line += char;
      }
    };
    input.on('data', onData);
  });
}
