/**
 * The admin API's revocation endpoint: `POST /admin/revocations` with
 * `{ "kind": "token" | "agent" | "user", "subject": "…", "reason": "…" }`. The operator is the
 * authenticated caller (an agent holding the admin role), never a request parameter; the
 * revocation is in force on the next request, here and on every replica.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OperationError, WardenError } from '../domain/errors.js';
import type { Identity } from '../domain/identity.js';
import { sendJson } from '../http/json-reply.js';
import { readJsonBody } from '../http/read-body.js';
import {
  REVOCATION_KINDS,
  type Revocation,
  type RevocationKind,
  type RevokeCredentialRequest,
} from '../identity/revoke-credential.js';
import {
  ADMIN_ROLE,
  requireAccess,
  type AdminAccess,
  type AdminAuthenticator,
} from './admin-access.js';

export { ADMIN_ROLE };

const ACCESS: AdminAccess = { surface: 'The admin API', roles: [ADMIN_ROLE] };

const MAX_BODY_BYTES = 8 * 1024;

export interface RevocationsApiOptions {
  readonly authenticate: AdminAuthenticator;
  /**
   * The revokeCredential operation (src/identity/revoke-credential.ts), bound to the gateway's
   * revocation list and audit log: it stores, applies and records the revocation.
   */
  readonly revoke: (request: RevokeCredentialRequest) => Promise<Revocation>;
}

export function createRevocationsApi(options: RevocationsApiOptions) {
  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'POST') {
      throw new WardenError('WARDEN_METHOD_NOT_ALLOWED', undefined, { details: { allow: 'POST' } });
    }
    const operator = await options.authenticate(request, ACCESS);
    requireAccess(operator, ACCESS);
    const { kind, subject, reason } = parseRevocationRequest(
      await readJsonBody(request, MAX_BODY_BYTES),
    );
    let revocation: Revocation;
    try {
      revocation = await options.revoke({ kind, subject, reason, by: describeOperator(operator) });
    } catch (error) {
      if (error instanceof OperationError) {
        throw new WardenError('WARDEN_INVALID_MESSAGE', `${error.message}.`);
      }
      throw error;
    }
    sendJson(response, 201, {
      revoked: { kind, subject, revokedAt: new Date(revocation.revokedAt).toISOString() },
    });
  };
}

/** The operator as the audit trail names them: the token's user, through which agent. */
function describeOperator(operator: Identity): string {
  return operator.user === undefined
    ? `agent:${operator.agent}`
    : `user:${operator.user} via ${operator.agent}`;
}

/** The request's shape; what its values may be is the operation's to check. */
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
  if (typeof kind !== 'string' || !REVOCATION_KINDS.includes(kind as RevocationKind)) {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'kind must be "token", "agent" or "user".');
  }
  if (typeof subject !== 'string') {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'subject must be a string.');
  }
  if (typeof reason !== 'string') {
    throw new WardenError('WARDEN_INVALID_MESSAGE', 'reason is required (up to 1000 characters).');
  }
  return { kind: kind as RevocationKind, subject, reason };
}
