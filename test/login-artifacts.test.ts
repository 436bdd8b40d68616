// The authorization server's state in Warden's store (oauth_artifacts), on both backends, as
// oidc-provider's Adapter sees it: two replicas (two store connections to one database) share
// codes and refresh tokens, a code is consumed once, a grant's revocation takes its whole family,
// and expired artifacts are neither found nor kept.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createArtifactAdapterFactory } from '../src/identity/authorization-server/artifact-adapter.js';
import {
  createSharedSchema,
  openTracked,
  tempRoot,
  uniqueName,
} from './support/store-databases.js';

const backends = [
  {
    name: 'SQLite',
    url: async () => `sqlite:${tempRoot}/${uniqueName('artifacts')}.db`,
  },
  {
    name: 'PostgreSQL',
    url: async () => createSharedSchema(uniqueName('warden_login')),
  },
];

for (const backend of backends) {
  describe(`${backend.name} oauth_artifacts`, () => {
    test('a code stored by one replica is found, and consumed once, by another', async () => {
      const url = await backend.url();
      let clock = 1_000_000;
      const now = () => clock;
      const one = createArtifactAdapterFactory((await openTracked(url)).oauthArtifacts, now);
      const two = createArtifactAdapterFactory((await openTracked(url)).oauthArtifacts, now);
      await one('AuthorizationCode').upsert('code-1', { grantId: 'g1', accountId: 'alice' }, 60);
      const found = await two('AuthorizationCode').find('code-1');
      assert.equal(found?.['accountId'], 'alice');
      assert.equal(found?.['consumed'], undefined);
      await two('AuthorizationCode').consume('code-1');
      const replayed = await one('AuthorizationCode').find('code-1');
      assert.equal(typeof replayed?.['consumed'], 'number', 'the other replica sees it was used');
      clock += 61_000;
      assert.equal(await one('AuthorizationCode').find('code-1'), undefined, 'expired');
    });

    test('revoking a grant deletes every artifact issued under it, of any model', async () => {
      const url = await backend.url();
      const adapter = createArtifactAdapterFactory((await openTracked(url)).oauthArtifacts);
      await adapter('RefreshToken').upsert('rt-1', { grantId: 'family' }, 3600);
      await adapter('RefreshToken').upsert('rt-2', { grantId: 'family' }, 3600);
      await adapter('AuthorizationCode').upsert('code', { grantId: 'family' }, 60);
      await adapter('RefreshToken').upsert('other', { grantId: 'another' }, 3600);
      await adapter('RefreshToken').revokeByGrantId('family');
      assert.equal(await adapter('RefreshToken').find('rt-1'), undefined);
      assert.equal(await adapter('RefreshToken').find('rt-2'), undefined);
      assert.equal(await adapter('AuthorizationCode').find('code'), undefined);
      assert.ok(await adapter('RefreshToken').find('other'), 'another grant is untouched');
    });

    test('sessions are found by uid, and one model never reads another', async () => {
      const url = await backend.url();
      const adapter = createArtifactAdapterFactory((await openTracked(url)).oauthArtifacts);
      await adapter('Session').upsert('s-1', { uid: 'uid-1', accountId: 'alice' }, 3600);
      assert.equal((await adapter('Session').findByUid('uid-1'))?.['accountId'], 'alice');
      assert.equal(await adapter('Interaction').find('s-1'), undefined);
      await adapter('Session').destroy('s-1');
      assert.equal(await adapter('Session').findByUid('uid-1'), undefined);
    });

    test('consume succeeds for one racer only', async () => {
      const url = await backend.url();
      const store = await openTracked(url);
      await store.oauthArtifacts.upsert({
        kind: 'AuthorizationCode',
        id: 'race',
        payload: '{}',
        grantId: undefined,
        uid: undefined,
        userCode: undefined,
        expiresAt: Date.now() + 60_000,
        consumedAt: undefined,
      });
      const results = await Promise.all([
        store.oauthArtifacts.consume('AuthorizationCode', 'race', Date.now()),
        (await openTracked(url)).oauthArtifacts.consume('AuthorizationCode', 'race', Date.now()),
      ]);
      assert.deepEqual(results.sort(), [false, true]);
    });
  });
}
