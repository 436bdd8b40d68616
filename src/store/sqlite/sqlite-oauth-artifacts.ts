/** The authorization server's shared state (oauth_artifacts) on SQLite. */
import type { Database } from 'better-sqlite3';
import {
  OAUTH_ARTIFACT_COLUMNS,
  toOAuthArtifact,
  toOAuthArtifactParams,
} from '../oauth-artifact-rows.js';
import type { Row } from '../row-mapping.js';
import type { OAuthArtifactRepository } from '../types.js';

type Run = <T>(action: string, statement: () => T) => T;

const LIVE = '(expires_at IS NULL OR expires_at > ?)';

export function createSqliteOAuthArtifacts(db: Database, run: Run): OAuthArtifactRepository {
  const sql = {
    upsert: db.prepare(
      `INSERT INTO oauth_artifacts (${OAUTH_ARTIFACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload,
         grant_id = excluded.grant_id, uid = excluded.uid, user_code = excluded.user_code,
         expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
    ),
    find: db.prepare(
      `SELECT ${OAUTH_ARTIFACT_COLUMNS} FROM oauth_artifacts WHERE kind = ? AND id = ? AND ${LIVE}`,
    ),
    findByUid: db.prepare(
      `SELECT ${OAUTH_ARTIFACT_COLUMNS} FROM oauth_artifacts WHERE kind = ? AND uid = ? AND ${LIVE}`,
    ),
    findByUserCode: db.prepare(
      `SELECT ${OAUTH_ARTIFACT_COLUMNS} FROM oauth_artifacts
       WHERE kind = ? AND user_code = ? AND ${LIVE}`,
    ),
    consume: db.prepare(
      'UPDATE oauth_artifacts SET consumed_at = ? WHERE kind = ? AND id = ? AND consumed_at IS NULL',
    ),
    destroy: db.prepare('DELETE FROM oauth_artifacts WHERE kind = ? AND id = ?'),
    revokeByGrantId: db.prepare('DELETE FROM oauth_artifacts WHERE grant_id = ?'),
    deleteExpired: db.prepare(
      'DELETE FROM oauth_artifacts WHERE expires_at IS NOT NULL AND expires_at <= ?',
    ),
  };
  const one = (row: unknown) => (row === undefined ? undefined : toOAuthArtifact(row as Row));
  return {
    upsert: async (artifact) => {
      run('store an authorization server artifact', () =>
        sql.upsert.run(...toOAuthArtifactParams(artifact)),
      );
    },
    find: async (kind, id, now) =>
      one(run('find an authorization server artifact', () => sql.find.get(kind, id, now))),
    findByUid: async (kind, uid, now) =>
      one(run('find an authorization server artifact', () => sql.findByUid.get(kind, uid, now))),
    findByUserCode: async (kind, userCode, now) =>
      one(
        run('find an authorization server artifact', () =>
          sql.findByUserCode.get(kind, userCode, now),
        ),
      ),
    consume: async (kind, id, at) =>
      run('consume an authorization server artifact', () => sql.consume.run(at, kind, id))
        .changes === 1,
    destroy: async (kind, id) => {
      run('destroy an authorization server artifact', () => sql.destroy.run(kind, id));
    },
    revokeByGrantId: async (grantId) =>
      run('revoke an authorization grant', () => sql.revokeByGrantId.run(grantId)).changes,
    deleteExpired: async (now) =>
      run('delete expired authorization server artifacts', () => sql.deleteExpired.run(now))
        .changes,
  };
}
