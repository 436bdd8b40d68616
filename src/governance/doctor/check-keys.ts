/**
 * Keys: the built-in issuer's signing keys are rotated (the seed's "rotate credentials on a
 * predictable schedule"), and the argument-hash key is one file every replica shares.
 */
import type { BuiltinIssuerConfig } from '../../config/config.js';
import type { DoctorInput, Finding } from './finding.js';
import { formatDuration, isCluster, isUnderAny } from './judge-paths.js';

export function checkKeys({ config, store, host, now }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  const builtin = config.auth.issuers.find(
    (issuer): issuer is BuiltinIssuerConfig => issuer.kind === 'builtin',
  );
  const active = store?.signingKeys?.filter((key) => key.state === 'active') ?? [];
  const oldest = active.reduce<number | undefined>(
    (min, key) => (min === undefined || key.createdAt < min ? key.createdAt : min),
    undefined,
  );
  if (builtin !== undefined && oldest !== undefined && now - oldest > builtin.rotateEveryMs) {
    findings.push({
      id: 'keys.signing-key-not-rotated',
      stage: 'hardening',
      severity: 'warning',
      problem: `the active token-signing key is ${formatDuration(Math.floor((now - oldest) / 86_400_000) * 86_400_000)} old, past rotate_every (${formatDuration(builtin.rotateEveryMs)})`,
      where: 'auth.issuers.builtin.rotate_every',
      fix: 'run warden keys rotate (a running gateway also rotates when it next issues a token)',
    });
  }
  if (isCluster(config)) {
    const hashKey = config.audit.hashKeyFile;
    if (isUnderAny(hashKey, host.temporaryDirs)) {
      findings.push({
        id: 'keys.hash-key-temporary',
        stage: 'hardening',
        severity: 'error',
        problem: `the argument-hash key ${hashKey} is on a temporary path: replicas (and restarts) end up with different keys, so equal arguments stop hashing alike`,
        where: 'audit.hash_key_file',
        fix: 'put one key file on a volume (or secret) every replica mounts',
      });
    } else if (!host.hashKeyFileExists) {
      findings.push({
        id: 'keys.hash-key-missing',
        stage: 'hardening',
        severity: 'warning',
        problem: `the argument-hash key ${hashKey} does not exist: each replica would create a key of its own`,
        where: 'audit.hash_key_file',
        fix: 'create the key once (32 random bytes) and mount the same file on every replica',
      });
    }
  }
  return findings;
}
