/**
 * The composition root for an operator's shell (the `warden` CLI): opens the deployment's store
 * from its config and hands out the operations of identity/, policy/, approvals/ and audit/
 * bound to it. Each operation builds its own audit record; the session appends them on this
 * process's own stream, each sealed by a checkpoint (recordOnce), so a CLI run never contends
 * with a running gateway's chain. The shell never sees the store.
 */
import { createApprovalService, type ApprovalService } from '../approvals/approval-service.js';
import { archiveAuditLog, type ArchiveAuditLogRequest } from '../audit/archive-audit-log.js';
import { loadOrCreateAuditKey } from '../audit/checkpoint.js';
import { exportAuditLog, type ExportAuditLogRequest } from '../audit/export-audit-log.js';
import { findCallRecords, queryAuditLog, type AuditQuery } from '../audit/query-audit-log.js';
import { recordOnce } from '../audit/record-once.js';
import { createAuditTail, type AuditTail } from '../audit/tail.js';
import { verifyAuditStore, type VerifyAuditOptions } from '../audit/verify-audit-store.js';
import type { Config } from '../config/config.js';
import type { AuditRecord } from '../domain/audit-record.js';
import { ConfigError } from '../domain/errors.js';
import type { OperationContext } from '../domain/operation.js';
import type { BuiltinIssuer, IssuedToken, IssueTokenRequest } from '../identity/builtin-issuer.js';
import {
  revokeCredential,
  type Revocation,
  type RevokeCredentialRequest,
} from '../identity/revoke-credential.js';
import { rotateSigningKeys, type KeyRotation } from '../identity/rotate-signing-keys.js';
import {
  revokeCertificate,
  type RevokeCertificateRequest,
} from '../identity/tls-revoke-certificate.js';
import type { SigningKeyring, SigningKeyStatus } from '../identity/signing-keys.js';
import {
  approveToolDefinition,
  type ApproveToolDefinitionRequest,
  type ToolApproval,
} from '../policy/approve-tool-definition.js';
import {
  grantBreakGlass,
  type BreakGlassGrant,
  type GrantBreakGlassRequest,
} from '../policy/grant-break-glass.js';
import { listToolDefinitions, type ToolVersion } from '../policy/list-tool-definitions.js';
import { readPolicyStates, type PolicyStateValue } from '../policy/read-policy-states.js';
import {
  pushPolicyBundle,
  type PushedPolicyBundle,
  type PushPolicyBundleRequest,
} from '../policy/push-policy-bundle.js';
import { readPolicyStatus, type PolicyStatus } from '../policy/read-policy-status.js';
import { revokeBreakGlass, type RevokeBreakGlassRequest } from '../policy/revoke-break-glass.js';
import { setPolicyState, type SetPolicyStateRequest } from '../policy/set-policy-state.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/types.js';

export interface IdentityOperations {
  revokeCredential(request: RevokeCredentialRequest): Promise<Revocation>;
  /** A client certificate by serial, refused by every replica's listener. */
  revokeCertificate(request: RevokeCertificateRequest): Promise<Revocation>;
  /** Throws ConfigError when no built-in issuer is configured (as do the two below). */
  rotateSigningKeys(request: { readonly by: string }): Promise<KeyRotation>;
  listSigningKeys(): Promise<SigningKeyStatus[]>;
  issueToken(request: IssueTokenRequest): Promise<IssuedToken>;
}

export interface PolicyOperations {
  grantBreakGlass(request: GrantBreakGlassRequest): Promise<BreakGlassGrant>;
  revokeBreakGlass(request: RevokeBreakGlassRequest): Promise<BreakGlassGrant>;
  /** The break-glass grants in force at `at` (default now), oldest first. */
  listBreakGlassGrants(at?: number): Promise<BreakGlassGrant[]>;
  setPolicyState(request: SetPolicyStateRequest): Promise<{ readonly before: PolicyStateValue }>;
  readPolicyStates(): Promise<Map<string, PolicyStateValue>>;
  approveToolDefinition(request: ApproveToolDefinitionRequest): Promise<ToolApproval>;
  listToolDefinitions(upstream?: string): Promise<ToolVersion[]>;
  pushPolicyBundle(request: PushPolicyBundleRequest): Promise<PushedPolicyBundle>;
  readPolicyStatus(): Promise<PolicyStatus>;
}

export type ApprovalOperations = Pick<ApprovalService, 'list' | 'get' | 'decide'>;

export interface AuditOperations {
  query(query: AuditQuery): Promise<AuditRecord[]>;
  findCallRecords(requestId: string): Promise<AuditRecord[]>;
  export(request: ExportAuditLogRequest): ReturnType<typeof exportAuditLog>;
  verify(options?: VerifyAuditOptions): ReturnType<typeof verifyAuditStore>;
  archive(request: ArchiveAuditLogRequest): ReturnType<typeof archiveAuditLog>;
  /** The audit public key (created on first use), to pin somewhere the log's writers cannot reach. */
  publicKey(): Promise<{ readonly publicKeyPem: string; readonly keyId: string }>;
  tail(): AuditTail;
}

export interface OperatorSession {
  readonly config: Config;
  readonly identity: IdentityOperations;
  readonly policy: PolicyOperations;
  readonly approvals: ApprovalOperations;
  readonly audit: AuditOperations;
  close(): Promise<void>;
}

export interface OperatorSessionOptions {
  /** Told about failures that do not change an outcome (a late audit record of an approval). */
  readonly onError?: (error: unknown, message: string) => void;
  readonly now?: () => number;
}

/** Opens the configured store; close the session when done. */
export async function openOperatorSession(
  config: Config,
  options: OperatorSessionOptions = {},
): Promise<OperatorSession> {
  const store = await openStore(config.store);
  const context: OperationContext = {
    environment: config.environment,
    now: options.now ?? Date.now,
    record: (entry) => recordOnce(store.audit, entry, config.audit.signingKey),
  };
  return {
    config,
    identity: bindIdentityOperations(config, store, context),
    policy: bindPolicyOperations(config, store, context),
    approvals: createApprovalService({
      store,
      config: config.approvals,
      now: context.now,
      environment: config.environment,
      record: context.record,
      // A request exists before anyone decides it: nothing to announce from here.
      notify: () => undefined,
      ...(options.onError !== undefined && { onError: options.onError }),
    }),
    audit: bindAuditOperations(store),
    close: () => store.close(),
  };
}

/** Opens a session, runs `work`, and closes the session whatever happens. */
export async function withOperatorSession<T>(
  config: Config,
  work: (session: OperatorSession) => Promise<T>,
  options: OperatorSessionOptions = {},
): Promise<T> {
  const session = await openOperatorSession(config, options);
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

function bindIdentityOperations(
  config: Config,
  store: Store,
  context: OperationContext,
): IdentityOperations {
  // The issuer (and jose with it) is loaded by the commands that use it, not by every command.
  let issuer: Promise<BuiltinIssuerParts> | undefined;
  const builtinIssuer = (): Promise<BuiltinIssuerParts> => {
    issuer ??= loadBuiltinIssuer(config, store, context.now);
    return issuer;
  };
  return {
    revokeCredential: (request) =>
      revokeCredential({ ...context, auth: config.auth, revocations: store.revocations }, request),
    revokeCertificate: (request) =>
      revokeCertificate({ ...context, revocations: store.revocations }, request),
    rotateSigningKeys: async (request) =>
      rotateSigningKeys({ ...context, keyring: (await builtinIssuer()).keyring }, request),
    listSigningKeys: async () => (await builtinIssuer()).keyring.listKeys(),
    issueToken: async (request) => (await builtinIssuer()).issuer.issueToken(request),
  };
}

interface BuiltinIssuerParts {
  readonly keyring: SigningKeyring;
  readonly issuer: BuiltinIssuer;
}

/** The configured built-in issuer on the store's keys; ConfigError when none is configured. */
async function loadBuiltinIssuer(
  config: Config,
  store: Store,
  now: () => number,
): Promise<BuiltinIssuerParts> {
  const { createBuiltinIssuer, createBuiltinKeyring, findBuiltinIssuerConfig } =
    await import('../identity/builtin-issuer.js');
  const issuerConfig = findBuiltinIssuerConfig(config.auth);
  if (!issuerConfig) {
    throw new ConfigError(config.source, [
      'auth.issuers: no built-in issuer is configured (add `- builtin: {}`)',
    ]);
  }
  const keyring = createBuiltinKeyring({
    repository: store.signingKeys,
    config: issuerConfig,
    auth: config.auth,
    now,
  });
  const issuer = createBuiltinIssuer({
    config: issuerConfig,
    auth: config.auth,
    environment: config.environment,
    agents: config.agents,
    keyring,
    now,
  });
  return { keyring, issuer };
}

function bindPolicyOperations(
  config: Config,
  store: Store,
  context: OperationContext,
): PolicyOperations {
  return {
    grantBreakGlass: (request) =>
      grantBreakGlass({ ...context, config, breakGlass: store.breakGlass }, request),
    revokeBreakGlass: (request) =>
      revokeBreakGlass({ ...context, breakGlass: store.breakGlass }, request),
    listBreakGlassGrants: (at) => store.breakGlass.listActive(at ?? context.now()),
    setPolicyState: (request) =>
      setPolicyState({ ...context, config, policyStates: store.policyStates }, request),
    readPolicyStates: () => readPolicyStates({ config, policyStates: store.policyStates }),
    approveToolDefinition: (request) =>
      approveToolDefinition(
        { ...context, config, toolDefinitions: store.toolDefinitions },
        request,
      ),
    listToolDefinitions: (upstream) =>
      listToolDefinitions({ toolDefinitions: store.toolDefinitions }, upstream),
    pushPolicyBundle: (request) =>
      pushPolicyBundle({ ...context, config, policyBundles: store.policyBundles }, request),
    readPolicyStatus: () =>
      readPolicyStatus({
        replicas: store.replicas,
        policyBundles: store.policyBundles,
        liveMs: config.cluster.deadAfterMs,
      }),
  };
}

function bindAuditOperations(store: Store): AuditOperations {
  const repository = store.audit;
  return {
    query: (query) => queryAuditLog(repository, query),
    findCallRecords: (requestId) => findCallRecords(repository, requestId),
    export: (request) => exportAuditLog(repository, request),
    verify: (options) => verifyAuditStore(repository, options),
    archive: (request) => archiveAuditLog(repository, request),
    publicKey: async () => {
      const { publicKeyPem, keyId } = await loadOrCreateAuditKey(repository);
      return { publicKeyPem, keyId };
    },
    tail: () => createAuditTail(repository),
  };
}
