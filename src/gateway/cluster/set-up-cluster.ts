/**
 * This replica among the others on the store: its membership (always: it is also what refuses a
 * second writer on one audit stream) and, when `cluster.advertise_url` is set, the session homes
 * that let any replica serve any session.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Config } from '../../config/config.js';
import { canonicalJson } from '../../domain/canonical-json.js';
import type { ReplicaRecord, Store } from '../../store/types.js';
import { describeConfig } from '../audit-log.js';
import type { Logger } from '../logger.js';
import {
  createRequestStateSigner,
  singleKey,
  type RequestStateSigner,
} from '../../mcp/stateless/request-state.js';
import { joinCluster, type Membership } from './replica-membership.js';
import { loadRequestStateKeys } from './request-state-keys.js';
import { createSessionHomes, type SessionHomes } from './session-homes.js';

export interface Cluster {
  readonly membership: Membership;
  /** Undefined when this replica takes no hops (no advertise_url). */
  readonly homes: SessionHomes | undefined;
  /** Signs the requestState of parked 2026-07-28 calls with keys every replica shares. */
  readonly requestStates: RequestStateSigner;
  close(): Promise<void>;
}

const HOP_KEY_SECRET = 'hop-key-v1';

export async function setUpCluster(options: {
  readonly config: Config;
  readonly store: Store;
  readonly hashKey: Buffer;
  readonly policyVersion: () => string;
  readonly logger: Logger;
  readonly onReplicaGone?: ((replica: ReplicaRecord) => Promise<void>) | undefined;
}): Promise<Cluster> {
  const { config, store, logger } = options;
  const membership = await joinCluster({
    store,
    id: config.cluster.replica,
    url: config.cluster.advertiseUrl,
    auditStream: config.audit.stream,
    configDigest: createHash('sha256')
      .update(canonicalJson(describeConfig(config)))
      .digest('hex'),
    hashKeyDigest: fingerprintOf(options.hashKey),
    policyVersion: options.policyVersion,
    heartbeatMs: config.cluster.heartbeatMs,
    liveMs: config.cluster.deadAfterMs,
    logger,
    onReplicaGone: options.onReplicaGone,
  });
  if (config.cluster.advertiseUrl === undefined) {
    return {
      membership,
      homes: undefined,
      requestStates: createRequestStateSigner(singleKey(), membership.id),
      close: () => membership.leave(),
    };
  }
  const keys = await loadRequestStateKeys(store, logger);
  const hopKey = await store.sharedSecrets.getOrCreate(
    HOP_KEY_SECRET,
    randomBytes(32).toString('base64url'),
  );
  return {
    membership,
    homes: createSessionHomes({
      store,
      membership,
      hopKey: Buffer.from(hopKey, 'base64url'),
      logger,
    }),
    requestStates: createRequestStateSigner(keys, membership.id),
    close: async () => {
      keys.close();
      await membership.leave();
    },
  };
}

/** Tells keys apart without telling anything of them. */
function fingerprintOf(key: Buffer): string {
  return createHmac('sha256', key).update('warden argument-hash key fingerprint').digest('hex');
}
