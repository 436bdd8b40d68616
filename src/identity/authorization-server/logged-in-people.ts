/**
 * The people who logged in at the authorization server, kept in the store beside the grants
 * (oauth_artifacts, kind `WardenPerson`), so a refresh on any replica knows whose token it mints
 * and with which roles. A built-in user is re-read from the config at each use: removing them or
 * changing their roles takes effect at the next refresh.
 */
import type { BuiltinUserConfig } from '../../config/login-schema.js';
import type { OAuthArtifactRepository } from '../../store/types.js';
import type { Person } from '../login/person.js';

const KIND = 'WardenPerson';

export interface LoggedInPeople {
  /** Remembers the person for `keepMs` (their longest-lived refresh token). */
  remember(person: Person): Promise<void>;
  /** The person as they are now; undefined when unknown, expired or no longer configured. */
  find(id: string): Promise<Person | undefined>;
}

export function createLoggedInPeople(options: {
  readonly repository: OAuthArtifactRepository;
  readonly users: ReadonlyMap<string, BuiltinUserConfig>;
  readonly keepMs: number;
  readonly now?: () => number;
}): LoggedInPeople {
  const { repository, users, keepMs } = options;
  const now = options.now ?? Date.now;
  return {
    async remember(person) {
      await repository.upsert({
        kind: KIND,
        id: person.id,
        payload: JSON.stringify(person),
        grantId: undefined,
        uid: undefined,
        userCode: undefined,
        expiresAt: now() + keepMs,
        consumedAt: undefined,
      });
    },
    async find(id) {
      const stored = await repository.find(KIND, id, now());
      if (stored === undefined) return undefined;
      const person = JSON.parse(stored.payload) as Person;
      if (person.via !== 'builtin') return person;
      const user = users.get(person.id);
      return user && { ...person, roles: user.roles, name: user.name, email: user.email };
    },
  };
}
