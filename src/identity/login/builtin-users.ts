/**
 * The people in `auth.login.users`: a user id, an scrypt password hash (the same format and
 * parameters as agents' client secrets) and the roles they hold. Logging in takes about the same
 * time whether or not the user exists, and wrong passwords are limited per user and per source
 * by the client-secret limiter (on the store, so every replica counts the same guesses).
 */
import { randomBytes } from 'node:crypto';
import { hashClientSecret, verifyClientSecret } from '../client-authentication.js';
import { createMemorySecretLimiter } from '../client-secret-limiter.js';
import type { ClientSecretLimiter } from '../client-secret-limiter.js';
import type { BuiltinUserConfig } from '../../config/login-schema.js';
import { LocalError } from '../../domain/errors.js';
import type { Person } from './person.js';
import { findUserIdProblem, isAcceptableUserId } from '../../config/login-user-ids.js';

/** Stable codes of every BuiltinUserError; callers branch on these, never on messages. */
export const BUILTIN_USER_ERROR_CODES = [
  /** A password shorter than MIN_PASSWORD_LENGTH characters (or longer than the maximum). */
  'PASSWORD_NOT_ACCEPTED',
  /** Two configured user ids look alike (equal once compatibility forms and case are folded). */
  'USER_IDS_CONFUSABLE',
  /** A configured user id starts or ends with white space, or holds control or invisible characters. */
  'USER_ID_NOT_ACCEPTED',
] as const;

export type BuiltinUserErrorCode = (typeof BUILTIN_USER_ERROR_CODES)[number];

export class BuiltinUserError extends LocalError {
  declare readonly code: BuiltinUserErrorCode;

  constructor(code: BuiltinUserErrorCode, message: string) {
    super(code, message);
    this.name = 'BuiltinUserError';
  }
}

/** In characters (code points), after NFC normalisation. */
export const MIN_PASSWORD_LENGTH = 12;
/** Longer input is refused unhashed: scrypt's cost grows with it, and no one types more. */
export const MAX_PASSWORD_LENGTH = 1024;
/** The same bound as the config schema's user ids. */

/**
 * Passwords are normalised to NFC before hashing and checking, so the same password typed on
 * systems that compose accents differently (é as one code point or as e + combining accent)
 * still matches.
 */
function normalisePassword(password: string): string {
  return password.normalize('NFC');
}

/** Hashes a password for `auth.login.users.<id>.password_hash` (`scrypt$N$r$p$salt$hash`). */
export async function hashPassword(password: string): Promise<string> {
  const normalised = normalisePassword(password);
  const length = [...normalised].length;
  if (length < MIN_PASSWORD_LENGTH)
    throw new BuiltinUserError(
      'PASSWORD_NOT_ACCEPTED',
      `the password is shorter than ${MIN_PASSWORD_LENGTH} characters`,
    );
  if (length > MAX_PASSWORD_LENGTH)
    throw new BuiltinUserError(
      'PASSWORD_NOT_ACCEPTED',
      `the password is longer than ${MAX_PASSWORD_LENGTH} characters`,
    );
  return hashClientSecret(normalised);
}

/** Why a login was refused; for the audit record, never shown to the person beyond "no". */
export type BuiltinLoginFailure = 'malformed' | 'unknown_user' | 'wrong_password' | 'limited';

export type BuiltinLogin =
  | { readonly outcome: 'authenticated'; readonly person: Person }
  | {
      readonly outcome: 'refused';
      readonly reason: BuiltinLoginFailure;
      /** When limited: how long until this source may try this user again. */
      readonly retryAfterMs: number | undefined;
    };

export interface BuiltinUserDirectoryOptions {
  /**
   * Counts wrong passwords per user (`user:<id>`) and per source. Pass
   * `createStoreSecretLimiter({ repository: store.secretFailures })` so replicas share the count;
   * defaults to a limiter in this process's memory.
   */
  readonly limiter?: ClientSecretLimiter;
}

export interface BuiltinUserDirectory {
  /** The person, if the password is theirs and neither they nor this source are locked out. */
  authenticate(userId: string, password: string, source: string): Promise<Person | undefined>;
  /** The same check, saying why a login was refused (for the audit record). */
  verify(userId: string, password: string, source: string): Promise<BuiltinLogin>;
}

/**
 * User ids match exactly after NFC normalisation, nothing more. NFC makes canonically equivalent
 * spellings (which render identically) one id; it does not fold compatibility forms, so the
 * fullwidth "ａｌｉｃｅ" stays a different string from "alice". Nothing is trimmed: " alice" is
 * not "alice", because an id that matched after trimming would let two different strings name
 * one account, while the audit log and tokens carry one exact id; a presented id with white space
 * at either end, or control or invisible characters, is refused unchecked (no configured id has
 * them). Case is not folded either, for the same reason. Configured ids that look alike are
 * refused up front (createBuiltinUserDirectory throws BuiltinUserError).
 */
export function createBuiltinUserDirectory(
  users: ReadonlyMap<string, BuiltinUserConfig>,
  options: BuiltinUserDirectoryOptions = {},
): BuiltinUserDirectory {
  const byId = indexUsers(users);
  const limiter = options.limiter ?? createMemorySecretLimiter();
  // An unknown user is checked against this, so a miss costs one scrypt like a wrong password.
  // Made now, so the first miss does not cost two.
  const dummyHash = hashClientSecret(randomBytes(32).toString('base64url'));
  dummyHash.catch(() => undefined);

  async function verify(userId: string, password: string, source: string): Promise<BuiltinLogin> {
    const id = userId.normalize('NFC');
    const normalised = normalisePassword(password);
    if (
      !isAcceptableUserId(id) ||
      normalised.length === 0 ||
      normalised.length > MAX_PASSWORD_LENGTH
    )
      return refused('malformed');
    // Every claimed id is counted, known or not, so the limiter's answers do not tell them apart.
    const reservation = await limiter.reserve({ source, clientId: `user:${id}` });
    if (reservation.outcome === 'limited') return refused('limited', reservation.retryAfterMs);
    const user = byId.get(id);
    const matches = await verifyClientSecret(normalised, user?.passwordHash ?? (await dummyHash));
    if (!user) return refused('unknown_user');
    if (!matches) return refused('wrong_password');
    await limiter.succeeded(reservation.ticket);
    return { outcome: 'authenticated', person: toPerson(user) };
  }

  return {
    verify,
    async authenticate(userId, password, source) {
      const login = await verify(userId, password, source);
      return login.outcome === 'authenticated' ? login.person : undefined;
    },
  };
}

function refused(reason: BuiltinLoginFailure, retryAfterMs?: number): BuiltinLogin {
  return { outcome: 'refused', reason, retryAfterMs };
}

function toPerson(user: BuiltinUserConfig): Person {
  return Object.freeze({
    id: user.id,
    name: user.name,
    email: user.email,
    roles: Object.freeze([...user.roles]),
    via: 'builtin' as const,
  });
}

/** The users by NFC id; configured ids that look alike (or collide under NFC) are refused. */
function indexUsers(
  users: ReadonlyMap<string, BuiltinUserConfig>,
): ReadonlyMap<string, BuiltinUserConfig> {
  const problem = findUserIdProblem(users.keys());
  if (problem !== undefined)
    throw new BuiltinUserError(
      problem.kind === 'confusable' ? 'USER_IDS_CONFUSABLE' : 'USER_ID_NOT_ACCEPTED',
      problem.message,
    );
  const byId = new Map<string, BuiltinUserConfig>();
  for (const user of users.values()) {
    const id = user.id.normalize('NFC');
    byId.set(id, { ...user, id });
  }
  return byId;
}
