// Built-in users (auth.login.users) from the attacker's side: wrong and unknown users get no
// one, guessing is limited per user and per source across replicas sharing a SQLite store, and
// user ids that look like another user's (fullwidth, decomposed accents, stray spaces, case,
// invisible characters) never log in as that user. `warden users hash-password` makes hashes
// the directory accepts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { printPasswordHash } from '../src/cli/users.js';
import type { BuiltinUserConfig } from '../src/config/login-schema.js';
import { createStoreSecretLimiter } from '../src/identity/client-secret-limiter.js';
import {
  BuiltinUserError,
  createBuiltinUserDirectory,
  type BuiltinUserDirectory,
  hashPassword,
  MIN_PASSWORD_LENGTH,
} from '../src/identity/login/builtin-users.js';
import { openTracked, tempRoot, uniqueName } from './support/store-databases.js';

const ALICE_PASSWORD = 'correct horse battery';
const JOSE_PASSWORD = 'staple paper clip';
const JOSE = 'jos\u00e9'; // NFC: é as one code point
const ATTACKER = '198.51.100.7';
const ALICE_HOME = '203.0.113.20';

let users: ReadonlyMap<string, BuiltinUserConfig>;
/** One directory (with its in-memory limiter) for the tests that do not count failures. */
let shared: BuiltinUserDirectory;

function user(id: string, passwordHash: string, roles: readonly string[]): BuiltinUserConfig {
  return { id, passwordHash, roles, name: `${id} (name)`, email: `${id}@example.com` };
}

before(async () => {
  const [aliceHash, joseHash] = await Promise.all([
    hashPassword(ALICE_PASSWORD),
    hashPassword(JOSE_PASSWORD),
  ]);
  users = new Map([
    ['alice', user('alice', aliceHash, ['payments-clerk', 'reader'])],
    [JOSE, user(JOSE, joseHash, ['reader'])],
  ]);
  shared = createBuiltinUserDirectory(users);
});

async function sharedStoreLimiter(file: string, limits: { perSource: number; perUser: number }) {
  const store = await openTracked(`sqlite:${join(tempRoot, `${file}.db`)}`);
  return createStoreSecretLimiter({
    repository: store.secretFailures,
    maxFailuresPerSource: limits.perSource,
    maxFailuresPerClient: limits.perUser,
    windowMs: 60_000,
  });
}

describe('logging in', () => {
  test('the right password gives the person, with their roles, via builtin', async () => {
    const directory = shared;
    const person = await directory.authenticate('alice', ALICE_PASSWORD, ALICE_HOME);
    assert.deepEqual(person, {
      id: 'alice',
      name: 'alice (name)',
      email: 'alice@example.com',
      roles: ['payments-clerk', 'reader'],
      via: 'builtin',
    });
    assert.ok(Object.isFrozen(person));
  });

  test("a wrong password, or another user's, gives no one", async () => {
    const directory = shared;
    assert.equal(
      await directory.authenticate('alice', 'correct horse battery!', ATTACKER),
      undefined,
    );
    assert.equal(await directory.authenticate('alice', JOSE_PASSWORD, ATTACKER), undefined);
    assert.equal(await directory.authenticate('alice', '', ATTACKER), undefined);
    const login = await directory.verify('alice', 'Correct horse battery', ATTACKER);
    assert.deepEqual(login, {
      outcome: 'refused',
      reason: 'wrong_password',
      retryAfterMs: undefined,
    });
  });

  test('an unknown user gives no one, whatever the password', async () => {
    const directory = shared;
    assert.equal(await directory.authenticate('mallory', ALICE_PASSWORD, ATTACKER), undefined);
    const login = await directory.verify('mallory', ALICE_PASSWORD, ATTACKER);
    assert.equal(login.outcome === 'refused' && login.reason, 'unknown_user');
  });

  test('the same password typed with a decomposed accent still matches', async () => {
    const hash = await hashPassword('cr\u00e8me br\u00fbl\u00e9e!');
    const directory = createBuiltinUserDirectory(new Map([['chef', user('chef', hash, [])]]));
    const decomposed = 'cr\u00e8me br\u00fbl\u00e9e!'.normalize('NFD');
    assert.equal((await directory.authenticate('chef', decomposed, ALICE_HOME))?.id, 'chef');
  });
});

describe('guessing passwords', () => {
  test('locks a source out after repeated failures, on every replica sharing the store', async () => {
    const file = uniqueName('users');
    const limits = { perSource: 3, perUser: 50 };
    const replicaA = createBuiltinUserDirectory(users, {
      limiter: await sharedStoreLimiter(file, limits),
    });
    const replicaB = createBuiltinUserDirectory(users, {
      limiter: await sharedStoreLimiter(file, limits),
    });
    assert.equal(await replicaA.authenticate('alice', 'guess one....', ATTACKER), undefined);
    assert.equal(await replicaB.authenticate('alice', 'guess two....', ATTACKER), undefined);
    assert.equal(await replicaA.authenticate('alice', 'guess three..', ATTACKER), undefined);
    // Even the right password is not checked now, on either replica.
    for (const replica of [replicaA, replicaB]) {
      const login = await replica.verify('alice', ALICE_PASSWORD, ATTACKER);
      assert.equal(login.outcome, 'refused');
      assert.equal(login.outcome === 'refused' && login.reason, 'limited');
      assert.ok(login.outcome === 'refused' && (login.retryAfterMs ?? 0) > 0);
    }
    // The attacker's guesses do not lock alice out from where she logs in.
    assert.equal((await replicaB.authenticate('alice', ALICE_PASSWORD, ALICE_HOME))?.id, 'alice');
  });

  test("bounds guesses spread over many sources by the user's budget", async () => {
    const file = uniqueName('users');
    const limits = { perSource: 10, perUser: 4 };
    const replicaA = createBuiltinUserDirectory(users, {
      limiter: await sharedStoreLimiter(file, limits),
    });
    const replicaB = createBuiltinUserDirectory(users, {
      limiter: await sharedStoreLimiter(file, limits),
    });
    const botnet = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'];
    for (const [index, source] of botnet.entries()) {
      const replica = index % 2 === 0 ? replicaA : replicaB;
      assert.equal(await replica.authenticate('alice', `guess ${index}.......`, source), undefined);
    }
    // The budget is spent: a source that already failed gets nothing checked, even a right guess.
    const again = await replicaA.verify('alice', ALICE_PASSWORD, '198.51.100.1');
    assert.equal(again.outcome === 'refused' && again.reason, 'limited');
    // A source that never failed still gets its one check, so alice herself is not locked out.
    assert.equal((await replicaB.authenticate('alice', ALICE_PASSWORD, ALICE_HOME))?.id, 'alice');
    // Other users keep their own budget.
    assert.equal((await replicaA.authenticate(JOSE, JOSE_PASSWORD, '198.51.100.1'))?.id, JOSE);
  });

  test('unknown user ids are limited like known ones, so lockouts do not reveal who exists', async () => {
    const directory = createBuiltinUserDirectory(users, {
      limiter: await sharedStoreLimiter(uniqueName('users'), { perSource: 2, perUser: 50 }),
    });
    for (const id of ['alice', 'mallory']) {
      await directory.authenticate(id, 'guess one....', ATTACKER);
      await directory.authenticate(id, 'guess two....', ATTACKER);
      const login = await directory.verify(id, 'guess three..', ATTACKER);
      assert.equal(login.outcome === 'refused' && login.reason, 'limited', id);
    }
  });
});

describe('user ids that look like another', () => {
  const lookAlikes = [
    ['fullwidth', '\uff41\uff4c\uff49\uff43\uff45'],
    ['trailing space', 'alice '],
    ['leading space', ' alice'],
    ['upper case', 'ALICE'],
    ['zero-width space', 'ali\u200bce'],
    ['Cyrillic a', '\u0430lice'],
    ['trailing newline', 'alice\n'],
  ] as const;

  for (const [name, id] of lookAlikes) {
    test(`refuses alice's password for "${name}" alice`, async () => {
      const login = await shared.verify(id, ALICE_PASSWORD, ATTACKER);
      // Refused as no one, or unchecked as malformed; not merely limited.
      assert.ok(
        login.outcome === 'refused' &&
          (login.reason === 'unknown_user' || login.reason === 'malformed'),
        JSON.stringify(login),
      );
    });
  }

  test('a decomposed accent names the same user, who is reported by the configured id', async () => {
    const directory = shared;
    const decomposed = JOSE.normalize('NFD');
    assert.notEqual(decomposed, JOSE);
    const person = await directory.authenticate(decomposed, JOSE_PASSWORD, ALICE_HOME);
    assert.equal(person?.id, JOSE);
  });

  test('refuses a configured user id with stray white space or invisible characters', () => {
    const hash = users.get('alice')?.passwordHash ?? '';
    for (const id of ['alice ', ' bob', 'ali\u200bce', 'carol\u202e', 'dave\n']) {
      assert.throws(
        () => createBuiltinUserDirectory(new Map([[id, user(id, hash, [])]])),
        (error: unknown) =>
          error instanceof BuiltinUserError && error.code === 'USER_ID_NOT_ACCEPTED',
        JSON.stringify(id),
      );
    }
  });

  test('refuses a configuration whose user ids look alike', () => {
    const hash = users.get('alice')?.passwordHash ?? '';
    for (const [first, second] of [
      ['alice', '\uff41\uff4c\uff49\uff43\uff45'],
      ['alice', 'Alice'],
      [JOSE, JOSE.normalize('NFD')],
    ] as const) {
      const config = new Map([
        [first, user(first, hash, [])],
        [second, user(second, hash, ['admin'])],
      ]);
      assert.throws(
        () => createBuiltinUserDirectory(config),
        (error: unknown) =>
          error instanceof BuiltinUserError && error.code === 'USER_IDS_CONFUSABLE',
        `${first} / ${second}`,
      );
    }
  });
});

describe('hashing passwords', () => {
  test(`refuses a password shorter than ${MIN_PASSWORD_LENGTH} characters`, async () => {
    for (const password of ['', 'elevenchars', '\u{1F511}'.repeat(MIN_PASSWORD_LENGTH - 1)]) {
      await assert.rejects(
        hashPassword(password),
        (error: unknown) =>
          error instanceof BuiltinUserError && error.code === 'PASSWORD_NOT_ACCEPTED',
        JSON.stringify(password),
      );
    }
    assert.match(await hashPassword('twelve chars'), /^scrypt\$32768\$8\$1\$/);
  });

  test('hash-password prints a hash the directory accepts (piped stdin)', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const prompts = new PassThrough();
    input.end('a long enough password\n');
    await printPasswordHash(input, output, prompts);
    const hash = String(output.read()).trim();
    const directory = createBuiltinUserDirectory(new Map([['dana', user('dana', hash, ['ops'])]]));
    assert.deepEqual(
      (await directory.authenticate('dana', 'a long enough password', ALICE_HOME))?.roles,
      ['ops'],
    );
    assert.equal(
      await directory.authenticate('dana', 'a long enough password\n', ALICE_HOME),
      undefined,
    );
  });

  test('at a terminal, hash-password reads without echo and asks twice', async () => {
    const terminal = Object.assign(new PassThrough(), {
      isTTY: true,
      rawModes: [] as boolean[],
      setRawMode(mode: boolean) {
        terminal.rawModes.push(mode);
        return terminal;
      },
    });
    const output = new PassThrough();
    const prompts = new PassThrough();
    // A typo fixed with backspace, then the confirmation pasted in one go with the first Enter.
    terminal.write('a long enough passwort\u007fd');
    terminal.write('\ra long enough password\r');
    await printPasswordHash(terminal, output, prompts);
    assert.deepEqual(terminal.rawModes, [true, false, true, false]);
    assert.doesNotMatch(String(prompts.read()), /long enough/);
    const hash = String(output.read()).trim();
    const directory = createBuiltinUserDirectory(new Map([['fay', user('fay', hash, [])]]));
    assert.equal(
      (await directory.authenticate('fay', 'a long enough password', ALICE_HOME))?.id,
      'fay',
    );

    const mismatch = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => mismatch });
    mismatch.write('a long enough password\ranother long password\r');
    await assert.rejects(
      printPasswordHash(mismatch, new PassThrough(), new PassThrough()),
      /differ/,
    );
  });

  test('`warden users hash-password` round trip, and a short password is a usage error', async () => {
    const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const run = (stdin: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', main, 'users', 'hash-password'], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(stdin);
      });
    const made = await run('hunter2hunter2\n');
    assert.equal(made.code, 0, made.stderr);
    const hash = made.stdout.trim();
    assert.doesNotMatch(made.stdout + made.stderr, /hunter2/);
    const directory = createBuiltinUserDirectory(new Map([['eve', user('eve', hash, [])]]));
    assert.equal((await directory.authenticate('eve', 'hunter2hunter2', ALICE_HOME))?.id, 'eve');

    const short = await run('hunter2\n');
    assert.equal(short.code, 2);
    assert.equal(short.stdout, '');
    assert.match(short.stderr, /shorter than 12/);
  });
});
