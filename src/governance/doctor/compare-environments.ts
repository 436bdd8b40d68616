/**
 * The seed's "reusing credentials across environments", with --compare: two environments' configs
 * that share an agent secret, a store (and so signing and audit keys), an argument-hash key, or
 * an environment name (so a token of one is accepted by the other).
 */
import type { DoctorInput, Finding } from './finding.js';

export function compareEnvironments({ config, other }: DoctorInput): Finding[] {
  if (other === undefined) return [];
  const findings: Finding[] = [];
  const shared = 'credentials shared across environments';
  if (config.environment === other.environment) {
    findings.push({
      id: 'environments.same-name',
      stage: 'pilot',
      severity: 'error',
      problem: `both configs name environment "${config.environment}": tokens of one are accepted by the other`,
      where: 'environment',
      fix: 'give each deployment its own environment name',
    });
  }
  const otherHashes = new Map<string, string>();
  for (const agent of other.agents.values()) {
    if (agent.secretHash !== undefined) otherHashes.set(agent.secretHash, agent.id);
  }
  for (const agent of config.agents.values()) {
    const twin = agent.secretHash === undefined ? undefined : otherHashes.get(agent.secretHash);
    if (twin === undefined) continue;
    findings.push({
      id: 'environments.shared-agent-secret',
      stage: 'pilot',
      severity: 'error',
      problem: `${shared}: agent ${agent.id} has the same client secret as agent ${twin} in ${other.source}`,
      where: `agents.${agent.id}.secret_hash`,
      fix: `issue a new secret for one of them (warden agents hash-secret) and store each in its own environment's vault`,
    });
  }
  if (config.audit.hashKeyFile === other.audit.hashKeyFile) {
    findings.push({
      id: 'environments.shared-hash-key',
      stage: 'pilot',
      severity: 'error',
      problem: `${shared}: both use the argument-hash key ${config.audit.hashKeyFile}, so arguments hash alike across them`,
      where: 'audit.hash_key_file',
      fix: 'give each environment a key file of its own',
    });
  }
  if (config.store === other.store && config.store !== 'sqlite::memory:') {
    findings.push({
      id: 'environments.shared-store',
      stage: 'pilot',
      severity: 'error',
      problem: `${shared}: both use one store, so they share signing keys, audit keys and approvals`,
      where: 'store',
      fix: 'give each environment its own database',
    });
  }
  return findings;
}
