/** The authorization server's shared state (oauth_artifacts) on PostgreSQL. */
import {
  OAUTH_ARTIFACT_COLUMNS,
  toOAuthArtifact,
  toOAuthArtifactParams,
} from '../oauth-artifact-rows.js';
import type { Row } from '../row-mapping.js';
import type { OAuthArtifactRepository } from '../types.js';

type Query = (action: string, text: string, values?: unknown[]) => Promise<Row[]>;

const SELECT = `SELECT ${OAUTH_ARTIFACT_COLUMNS} FROM oauth_artifacts`;
const LIVE = '(expires_at IS NULL OR expires_at > $3)';

export function createPostgresOAuthArtifacts(query: Query): OAuthArtifactRepository {
  const first = (rows: Row[]) => (rows[0] === undefined ? undefined : toOAuthArtifact(rows[0]));
  const action = 'find an authorization server artifact';
  return {
    upsert: async (artifact) => {
      await query(
        'store an authorization server artifact',
        `INSERT INTO oauth_artifacts (${OAUTH_ARTIFACT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload,
           grant_id = excluded.grant_id, uid = excluded.uid, user_code = excluded.user_code,
           expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
        toOAuthArtifactParams(artifact),
      );
    },
    find: async (kind, id, now) =>
      first(
        await query(action, `${SELECT} WHERE kind = $1 AND id = $2 AND ${LIVE}`, [kind, id, now]),
      ),
    findByUid: async (kind, uid, now) =>
      first(
        await query(action, `${SELECT} WHERE kind = $1 AND uid = $2 AND ${LIVE}`, [kind, uid, now]),
      ),
    findByUserCode: async (kind, userCode, now) =>
      first(
        await query(action, `${SELECT} WHERE kind = $1 AND user_code = $2 AND ${LIVE}`, [
          kind,
          userCode,
          now,
        ]),
      ),
    consume: async (kind, id, at) =>
      (
        await query(
          'consume an authorization server artifact',
          `UPDATE oauth_artifacts SET consumed_at = $1
           WHERE kind = $2 AND id = $3 AND consumed_at IS NULL RETURNING id`,
          [at, kind, id],
        )
      ).length === 1,
    destroy: async (kind, id) => {
      await query(
        'destroy an authorization server artifact',
        'DELETE FROM oauth_artifacts WHERE kind = $1 AND id = $2',
        [kind, id],
      );
    },
    revokeByGrantId: async (grantId) =>
      (
        await query(
          'revoke an authorization grant',
          'DELETE FROM oauth_artifacts WHERE grant_id = $1 RETURNING id',
          [grantId],
        )
      ).length,
    deleteExpired: async (now) =>
      (
        await query(
          'delete expired authorization server artifacts',
          'DELETE FROM oauth_artifacts WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING id',
          [now],
        )
      ).length,
  };
}
