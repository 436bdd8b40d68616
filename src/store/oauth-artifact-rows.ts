/** Rows of oauth_artifacts, mapped alike for both backends (PostgreSQL BIGINT arrives as text). */
import { assertEpochMs, type Row } from './row-mapping.js';
import type { OAuthArtifact } from './types.js';

export const OAUTH_ARTIFACT_COLUMNS =
  'kind, id, payload, grant_id, uid, user_code, expires_at, consumed_at';

export function toOAuthArtifact(row: Row): OAuthArtifact {
  return {
    kind: String(row.kind),
    id: String(row.id),
    payload: String(row.payload),
    grantId: optionalText(row.grant_id),
    uid: optionalText(row.uid),
    userCode: optionalText(row.user_code),
    expiresAt: optionalNumber(row.expires_at),
    consumedAt: optionalNumber(row.consumed_at),
  };
}

/** The row's values in OAUTH_ARTIFACT_COLUMNS order, checked before they reach SQL. */
export function toOAuthArtifactParams(artifact: OAuthArtifact): unknown[] {
  if (artifact.expiresAt !== undefined) assertEpochMs('expiresAt', artifact.expiresAt);
  if (artifact.consumedAt !== undefined) assertEpochMs('consumedAt', artifact.consumedAt);
  return [
    artifact.kind,
    artifact.id,
    artifact.payload,
    artifact.grantId ?? null,
    artifact.uid ?? null,
    artifact.userCode ?? null,
    artifact.expiresAt ?? null,
    artifact.consumedAt ?? null,
  ];
}

function optionalText(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

function optionalNumber(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}
