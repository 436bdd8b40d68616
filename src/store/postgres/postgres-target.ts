/**
 * Everything derived from a PostgreSQL URL and schema option: the connection string every client
 * uses (with search_path pinned at connection start), the NOTIFY channel, the migration lock key,
 * and a password-free form of the URL for error messages.
 */
import { createHash } from 'node:crypto';
import { StoreError } from '../errors.js';

const CHANNEL = 'warden_revocations';
/** Channel names are identifiers (at most 63 bytes), and the channel name embeds the schema. */
const SCHEMA_PATTERN = /^(?!pg_)[a-z_][a-z0-9_]{0,43}$/;

export interface PostgresTarget {
  readonly connectionString: string;
  /** The URL without its password, safe for logs and errors. */
  readonly redacted: string;
  readonly schema: string | undefined;
  /** NOTIFY is database-wide, so each schema gets its own channel: stores never hear another's. */
  readonly channel: string;
  /** Key of the session advisory lock that serialises migrations of this schema. */
  readonly lockKey: string;
}

export function resolvePostgresTarget(url: string, schema: string | undefined): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new StoreError('STORE_URL_INVALID', 'the PostgreSQL store URL cannot be parsed', {
      cause,
      target: 'postgres://…',
    });
  }
  const redacted = redactPassword(parsed);
  if (schema !== undefined && !SCHEMA_PATTERN.test(schema)) {
    throw new StoreError(
      'STORE_URL_INVALID',
      `schema ${JSON.stringify(schema)} must be 1 to 44 lower-case letters, digits or underscores, not starting with a digit or pg_`,
      { target: redacted },
    );
  }
  if (schema !== undefined) {
    // A startup parameter, not a SET after connecting: every pooled client, and the LISTEN client,
    // is in the schema before its first query, whoever takes it from the pool.
    const existing = parsed.searchParams.get('options');
    const pin = `-c search_path=${schema}`;
    parsed.searchParams.set('options', existing === null ? pin : `${existing} ${pin}`);
  }
  const lockName = `warden:migrations:${schema ?? ''}`;
  return {
    connectionString: parsed.toString(),
    redacted,
    schema,
    channel: schema === undefined ? CHANNEL : `${CHANNEL}_${schema}`,
    lockKey: BigInt.asIntN(
      64,
      createHash('sha256').update(lockName).digest().readBigUInt64BE(0),
    ).toString(),
  };
}

/** Double-quotes an identifier that was validated or is a constant. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function redactPassword(url: URL): string {
  const copy = new URL(url.toString());
  if (copy.password !== '') copy.password = '***';
  copy.search = '';
  return copy.toString();
}
