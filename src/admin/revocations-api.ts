/**
 * The admin API's revocation endpoint: `POST /admin/revocations` with
 * `{ "kind": "token" | "agent" | "user", "subject": "…", "reason": "…" }`. The operator is the
 * authenticated caller (an agent holding the admin role), never a request parameter; the
 * revocation is in force on the next request, here and on every replica.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../domain/errors.js';
import { readBody } from '../mcp/read-body.js';
import type { Revocation, RevocationKind } from '../store/types.js';
import {
  ADMIN_ROLE,
  requireAccess,
  type AdminAccess,
  type AdminAuthenticator,
} from './admin-access.js';

export { ADMIN_ROLE };

const ACCESS: AdminAccess = { surface: 'The admin API', roles: [ADMIN_ROLE] };

const MAX_BODY_BYTES = 8 * 1024;
const KINDS: readonly RevocationKind[] = ['token', 'agent', 'user'];

export interface RevocationsApiOptions {
  readonly authenticate: AdminAuthenticator;
  readonly revoke: (revocation: Revocation) => Promise<void>;
  /** How long a revocation must stay in force: the longest token lifetime plus clock skew. */
  readonly retentionMs: number;
  /** Told of every revocation, for the log (and the audit log once it lands). */
  readonly onRevoked: (revocation: Revocation) => void;
  readonly now?: () => number;
}

export function createRevocationsApi(options: RevocationsApiOptions) {
  const now = options.now ?? Date.now;
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'POST') {
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, { details: { allow: 'POST' } });
    }
    const operator = await options.authenticate(request, ACCESS);
    requireAccess(operator, ACCESS);
    const { kind, subject, reason } = parseRevocationRequest(await readJson(request));
    const revokedAt = now();
    const revocation: Revocation = {
      kind,
      subject,
      reason,
      revokedAt,
      expiresAt: revokedAt + options.retentionMs,
      revokedBy:
        operator.user === undefined
          ? `agent:${operator.agent}`
          : `user:${operator.user} via ${operator.agent}`,
    };
    await options.revoke(revocation);
    options.onRevoked(revocation);
    const body = JSON.stringify({
      revoked: { kind, subject, revokedAt: new Date(revokedAt).toISOString() },
    });
    response
      .writeHead(201, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      })
      .end(body);
  };
}

function parseRevocationRequest(value: unknown): {
  kind: RevocationKind;
  subject: string;
  reason: string;
} {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WardenError(
      'WARDEN_INVALID_MESSAGE',
      'Send a JSON object { kind, subject, reason }.',
    );
  }
  const body = value as Record<string, unknown>;
  const kind = body['kind'];
  const subject = body['subject'];
  const reason = body['reason'];
  if (typeof kind !== 'string' || !KINDS.includes(kind as RevocationKind)) {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'kind must be "token", "agent" or "user".');
  }
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 256) {
    throw new WardenError(
      'WARDEN_INVALID_MESSAGE',
      'subject must be a string of 1 to 256 characters.',
    );
  }
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 1000) {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'reason is required (up to 1000 characters).');
  }
  return { kind: kind as RevocationKind, subject, reason };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const body = await readBody(request, MAX_BODY_BYTES);
  try {
    return JSON.parse(body);
  } catch {
    throw new WardenError('WARDEN_PARSE_ERROR');
  }
}
