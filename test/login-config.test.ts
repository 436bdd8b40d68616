/**
 * `auth.login` and `auth.enterprise` in warden.yaml: what loads, and the mistakes that would
 * otherwise only show at the first login.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/domain/errors.js';
import { actingRoles, rolesFromGroups } from '../src/identity/login/person.js';

const HASH = 'scrypt$16384$8$1$c2FsdA$aGFzaA';

function configWith(auth: Record<string, unknown>, issuers: unknown[] = [{ builtin: {} }]) {
  return {
    auth: { resource: 'https://warden.example.com/mcp', issuers, ...auth },
    agents: { 'desktop-apps': { roles: ['clerk'] } },
    roles: { clerk: { grants: [{ tool: 'payments.list_invoices' }] } },
    upstreams: { payments: { url: 'https://payments.example.com/mcp' } },
  };
}

function issuesOf(raw: unknown): string[] {
  try {
    parseConfig(raw, 'warden.yaml');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  return [];
}

describe('auth.login', () => {
  test('a login with built-in users and the company provider loads, typed', () => {
    const config = parseConfig(
      configWith({
        login: {
          agent: 'desktop-apps',
          users: { alice: { password_hash: HASH, roles: ['clerk'], name: 'Alice' } },
          oidc: {
            issuer: 'https://login.example.com',
            client_id: 'warden',
            client_secret_env: 'WARDEN_LOGIN_SECRET',
            roles_by_group: { finance: ['clerk'] },
          },
          registration: false,
        },
      }),
      'warden.yaml',
    );
    const login = config.auth.login;
    assert.ok(login);
    assert.equal(login.agent, 'desktop-apps');
    assert.deepEqual(login.users.get('alice')?.roles, ['clerk']);
    assert.equal(login.oidc?.userClaim, 'email');
    assert.deepEqual(login.oidc?.rolesByGroup.get('finance'), ['clerk']);
    assert.equal(login.registration, false);
    assert.equal(login.clientMetadataDocuments.allowPrivateAddresses, false);
  });

  test('an unregistered login agent, no built-in issuer, nobody to log in, plain http IdP', () => {
    const problems = issuesOf(
      configWith(
        {
          login: {
            agent: 'desktop-app',
            oidc: {
              issuer: 'http://login.example.com',
              client_id: 'warden',
              client_secret_env: 'S',
            },
          },
        },
        [{ issuer: 'https://idp.example.com' }],
      ),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith('auth.login.agent: "desktop-app" is not a registered agent'),
      ),
    );
    assert.ok(problems.some((p) => p.startsWith('auth.login needs the built-in issuer')));
    assert.ok(
      problems.some((p) =>
        p.startsWith('auth.login.oidc.issuer: "http://login.example.com" must be https'),
      ),
    );
    assert.equal(
      issuesOf(configWith({ login: { agent: 'desktop-apps' } })).some((p) =>
        p.startsWith('auth.login: nobody can log in'),
      ),
      true,
    );
  });

  test('a password hash not made by warden is refused where it is written', () => {
    const problems = issuesOf(
      configWith({
        login: { agent: 'desktop-apps', users: { bob: { password_hash: 'hunter2' } } },
      }),
    );
    assert.ok(
      problems.some((p) => p.includes('auth.login.users.bob.password_hash')),
      problems.join('\n'),
    );
  });

  test('user ids that look alike, or hide white space, do not load', () => {
    const problems = issuesOf(
      configWith({
        login: {
          agent: 'desktop-apps',
          users: { alice: { password_hash: HASH }, ａｌｉｃｅ: { password_hash: HASH } },
        },
      }),
    );
    assert.ok(
      problems.some((p) => p.includes('look alike')),
      problems.join('\n'),
    );
    const spaced = issuesOf(
      configWith({ login: { agent: 'desktop-apps', users: { 'bob ': { password_hash: HASH } } } }),
    );
    assert.ok(
      spaced.some((p) => p.includes('white space')),
      spaced.join('\n'),
    );
  });

  test('a loopback http IdP is allowed (tests, a lab)', () => {
    const problems = issuesOf(
      configWith({
        login: {
          agent: 'desktop-apps',
          oidc: { issuer: 'http://127.0.0.1:9000', client_id: 'w', client_secret_env: 'S' },
        },
      }),
    );
    assert.deepEqual(problems, []);
  });
});

describe('auth.enterprise', () => {
  test('ID-JAG issuers need the built-in issuer', () => {
    const problems = issuesOf(
      configWith({ enterprise: { id_jag: [{ issuer: 'https://idp.example.com' }] } }, [
        { issuer: 'https://idp.example.com' },
      ]),
    );
    assert.ok(
      problems.some((p) => p.startsWith('auth.enterprise.id_jag needs the built-in issuer')),
    );
    assert.deepEqual(
      issuesOf(configWith({ enterprise: { id_jag: [{ issuer: 'https://idp.example.com' }] } })),
      [],
    );
  });
});

describe('the roles a person acts with', () => {
  test('only roles both the person and the app agent hold', () => {
    assert.deepEqual(actingRoles(['clerk', 'admin', 'clerk'], ['clerk', 'reader']), ['clerk']);
    assert.deepEqual(actingRoles(['admin'], ['clerk']), []);
  });

  test('groups map to roles; unknown groups and non-strings map to none', () => {
    const mapping = {
      userClaim: 'email',
      groupsClaim: 'groups',
      rolesByGroup: new Map([['finance', ['clerk']]]),
    };
    assert.deepEqual(rolesFromGroups({ groups: ['finance', 'clerk', 7] }, mapping), ['clerk']);
    assert.deepEqual(rolesFromGroups({ groups: 'finance' }, mapping), ['clerk']);
    assert.deepEqual(rolesFromGroups({}, mapping), []);
  });
});
