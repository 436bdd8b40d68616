/**
 * The demo agents' client secrets, the same from one run of `warden demo` to the next: kept in
 * plain text in a file only its owner can read (the demo prints them at every start), and as
 * hashes in the demo's config file. A secret whose hash in that file still matches keeps the
 * hash too, so a restart leaves the config as it was; anything missing or unreadable is made anew.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { isRecord } from '../domain/json-object.js';
import { hashClientSecret, verifyClientSecret } from '../identity/client-authentication.js';

export interface DemoCredential {
  readonly secret: string;
  /** As `agents.<id>.secret_hash` in the config. */
  readonly secretHash: string;
}

export interface DemoCredentialFiles {
  /** JSON `{ agent: secret }`, written with mode 0600. */
  readonly secrets: string;
  /** The demo's config file, whose `agents.<id>.secret_hash` an earlier run wrote. */
  readonly config: string;
}

/** A secret read back from the file is used only if it looks like one this module made. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{32,}$/;

/** Each agent's credential: the one an earlier run kept, else a new one. */
export async function loadDemoCredentials(
  agentIds: readonly string[],
  files: DemoCredentialFiles,
): Promise<Map<string, DemoCredential>> {
  const keptSecrets = readJsonObject(files.secrets);
  const keptAgents = readConfigAgents(files.config);
  const credentials = new Map<string, DemoCredential>();
  for (const id of agentIds) {
    const kept = keptSecrets[id];
    const secret =
      typeof kept === 'string' && SECRET_PATTERN.test(kept)
        ? kept
        : randomBytes(24).toString('base64url');
    const agent = keptAgents[id];
    const keptHash = isRecord(agent) ? agent['secret_hash'] : undefined;
    const secretHash =
      typeof keptHash === 'string' && (await verifyClientSecret(secret, keptHash))
        ? keptHash
        : await hashClientSecret(secret);
    credentials.set(id, { secret, secretHash });
  }
  return credentials;
}

/** Keeps the secrets for the next run (owner-only: they are credentials). */
export function saveDemoSecrets(
  file: string,
  credentials: ReadonlyMap<string, DemoCredential>,
): void {
  const secrets = Object.fromEntries(
    [...credentials].map(([id, credential]) => [id, credential.secret]),
  );
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
}

function readJsonObject(file: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isRecord(value) ? value : {};
  } catch {
    return {};
  }
}

function readConfigAgents(file: string): Record<string, unknown> {
  try {
    const config: unknown = parseYaml(readFileSync(file, 'utf8'));
    const agents = isRecord(config) ? config['agents'] : undefined;
    return isRecord(agents) ? agents : {};
  } catch {
    return {};
  }
}
