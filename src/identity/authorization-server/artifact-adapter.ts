/**
 * oidc-provider's storage (its Adapter interface) on Warden's store, so every replica sees the
 * same sessions, interactions, codes, grants, refresh tokens and registered clients: a login
 * begun on one replica finishes on another, and a code is redeemed once across all of them.
 */
import type { OAuthArtifactRepository } from '../../store/types.js';

/** What oidc-provider stores: a JSON object, with these fields used as indexes. */
export interface ArtifactPayload {
  readonly grantId?: string;
  readonly uid?: string;
  readonly userCode?: string;
  readonly [field: string]: unknown;
}

/** oidc-provider's Adapter, one per model name. */
export interface ArtifactAdapter {
  upsert(id: string, payload: ArtifactPayload, expiresInSeconds?: number): Promise<void>;
  find(id: string): Promise<ArtifactPayload | undefined>;
  findByUid(uid: string): Promise<ArtifactPayload | undefined>;
  findByUserCode(userCode: string): Promise<ArtifactPayload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/** The adapter factory to pass as oidc-provider's `adapter` (it calls it with each model name). */
export function createArtifactAdapterFactory(
  repository: OAuthArtifactRepository,
  now: () => number = Date.now,
): (model: string) => ArtifactAdapter {
  return (model) => {
    const read = (stored: Awaited<ReturnType<OAuthArtifactRepository['find']>>) => {
      if (stored === undefined) return undefined;
      const payload = JSON.parse(stored.payload) as ArtifactPayload;
      // oidc-provider reads `consumed` (epoch seconds) to spot a reused code or refresh token.
      return stored.consumedAt === undefined
        ? payload
        : { ...payload, consumed: Math.floor(stored.consumedAt / 1000) };
    };
    return {
      async upsert(id, payload, expiresInSeconds) {
        await repository.upsert({
          kind: model,
          id,
          payload: JSON.stringify(payload),
          grantId: payload.grantId,
          uid: payload.uid,
          userCode: payload.userCode,
          expiresAt: expiresInSeconds === undefined ? undefined : now() + expiresInSeconds * 1000,
          consumedAt: undefined,
        });
      },
      find: async (id) => read(await repository.find(model, id, now())),
      findByUid: async (uid) => read(await repository.findByUid(model, uid, now())),
      findByUserCode: async (userCode) =>
        read(await repository.findByUserCode(model, userCode, now())),
      async consume(id) {
        await repository.consume(model, id, now());
      },
      async destroy(id) {
        await repository.destroy(model, id);
      },
      // Revoking a grant deletes every artifact issued under it, whatever the model asking.
      async revokeByGrantId(grantId) {
        await repository.revokeByGrantId(grantId);
      },
    };
  };
}
