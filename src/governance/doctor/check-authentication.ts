/**
 * Pilot control, "basic auth": every listener off loopback speaks TLS, tokens are short-lived and
 * tied to this environment, and people's apps cannot register themselves from anywhere.
 */
import type { DoctorInput, Finding } from './finding.js';
import { formatDuration, isLoopbackHost, isProduction } from './judge-paths.js';

const LONGEST_TOKEN_MS = 60 * 60_000;

export function checkAuthentication({ config }: DoctorInput): Finding[] {
  const findings: Finding[] = [];
  const severe = isProduction(config) ? 'error' : 'warning';
  const exposed = !isLoopbackHost(config.listen.host);
  if (exposed && config.listen.tls === undefined) {
    findings.push({
      id: 'auth.tls-off',
      stage: 'pilot',
      severity: 'error',
      problem: `the gateway listens on ${config.listen.host} without TLS: tokens cross the network in clear`,
      where: 'listen.tls',
      fix: 'set listen.tls.cert and listen.tls.key (or listen on 127.0.0.1 behind a TLS proxy)',
    });
  }
  if (exposed && config.environment === 'development') {
    findings.push({
      id: 'auth.environment-unnamed',
      stage: 'pilot',
      severity: 'warning',
      problem:
        'environment is left at "development" on a reachable listener: tokens minted for any other deployment left at the default are accepted here',
      where: 'environment',
      fix: 'name the environment (e.g. environment: staging); tokens carry it and other environments are refused',
    });
  }
  config.auth.issuers.forEach((issuer, index) => {
    if (issuer.kind !== 'external') return;
    if (issuer.environmentClaim.trim() === '') {
      findings.push({
        id: 'auth.issuer-without-environment-claim',
        stage: 'pilot',
        severity: 'error',
        problem: `issuer ${issuer.issuer} has no environment claim: its tokens cannot be told apart between environments`,
        where: `auth.issuers.${index}.environment_claim`,
        fix: `have the issuer put a claim naming the environment in its tokens and set environment_claim to it (default warden_env = "${config.environment}")`,
      });
    }
  });
  if (config.auth.maxTokenLifetimeMs > LONGEST_TOKEN_MS) {
    findings.push({
      id: 'auth.long-token-lifetime',
      stage: 'pilot',
      severity: 'warning',
      problem: `tokens living ${formatDuration(config.auth.maxTokenLifetimeMs)} are accepted: a stolen one stays useful that long`,
      where: 'auth.max_token_lifetime',
      fix: 'accept tokens of at most 1h (the default); clients refresh them',
    });
  }
  const login = config.auth.login;
  if (login !== undefined) {
    const documents = login.clientMetadataDocuments;
    if (login.registration && !documents.enabled) {
      findings.push({
        id: 'auth.open-registration',
        stage: 'pilot',
        severity: severe,
        problem:
          'any app may register itself (dynamic client registration) and no client metadata documents are used to name apps by their URL',
        where: 'auth.login.registration',
        fix: 'enable auth.login.client_metadata_documents, or set auth.login.registration: false',
      });
    }
    if (documents.enabled && documents.allowPrivateAddresses) {
      findings.push({
        id: 'auth.cimd-private-addresses',
        stage: 'pilot',
        severity: severe,
        problem:
          'client metadata documents may be fetched from loopback and private addresses: an app can make the gateway probe the internal network',
        where: 'auth.login.client_metadata_documents.allow_private_addresses',
        fix: 'set allow_private_addresses: false (it is meant for tests and labs)',
      });
    }
  }
  return findings;
}
