/**
 * Starts a test gateway whose audit log (a SQLite file beside the test) the test reads while it
 * runs, by request id: the reference a refused client is given. Sends raw requests from a chosen
 * loopback address, so a test can play several sources (refusals of unknown callers are
 * aggregated per source).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditRecord } from '../../src/domain/audit-record.js';
import { openStore } from '../../src/store/open-store.js';
import type { Store } from '../../src/store/types.js';
import { startTestGateway, type TestGateway } from './gateway.js';
import { sendRaw, type RawReply, type RawRequest } from './raw-http.js';

/** A folder for one test file's store and keys; `cleanUp` removes it. */
export interface AuditedSetup {
  readonly dir: string;
  readonly storeUrl: string;
  readonly hashKeyFile: string;
  /** The `store` and `audit` keys of a test gateway's config. */
  readonly config: { store: string; audit: { hash_key_file: string } };
  cleanUp(): void;
}

export function createAuditedSetup(name: string): AuditedSetup {
  const dir = mkdtempSync(join(tmpdir(), `warden-${name}-`));
  const storeUrl = `sqlite:${join(dir, 'warden.db')}`;
  const hashKeyFile = join(dir, 'audit-hash.key');
  return {
    dir,
    storeUrl,
    hashKeyFile,
    config: { store: storeUrl, audit: { hash_key_file: hashKeyFile } },
    cleanUp: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface AuditReader {
  /**
   * The records of one request, waiting (bounded) until at least `atLeast` are there: a refusal's
   * record is written as the exchange ends, a moment after the client has its answer.
   */
  recordsOf(requestId: string, atLeast?: number): Promise<AuditRecord[]>;
  /** The records of one request, once (bounded) one of them satisfies `found`. */
  recordsUntil(requestId: string, found: (record: AuditRecord) => boolean): Promise<AuditRecord[]>;
  /** Every record of the log (up to 10,000), as it is now. */
  all(): Promise<AuditRecord[]>;
  /** Every record whose event is `event`, waiting (bounded) until `atLeast` are there. */
  withEvent(event: string, atLeast?: number): Promise<AuditRecord[]>;
  close(): Promise<void>;
}

/** How long a test waits for a record that should come: room for a loaded 2-core machine. */
const RECORD_WAIT_MS = 10_000;

export async function openAuditReader(storeUrl: string): Promise<AuditReader> {
  const store: Store = await openStore(storeUrl);
  const waitFor = async (
    read: () => Promise<AuditRecord[]>,
    done: (records: AuditRecord[]) => boolean,
  ): Promise<AuditRecord[]> => {
    const deadline = Date.now() + RECORD_WAIT_MS;
    let records = await read();
    while (!done(records) && Date.now() < deadline) {
      await sleep(25);
      records = await read();
    }
    return records;
  };
  const ofRequest = (requestId: string) => () => store.audit.query({ requestId, limit: 100 });
  return {
    recordsOf: (requestId, atLeast = 1) =>
      waitFor(ofRequest(requestId), (records) => records.length >= atLeast),
    recordsUntil: (requestId, found) =>
      waitFor(ofRequest(requestId), (records) => records.some(found)),
    all: () => store.audit.query({ limit: 10_000 }),
    withEvent: (event, atLeast = 1) =>
      waitFor(
        () => store.audit.query({ event, limit: 10_000 }),
        (records) => records.length >= atLeast,
      ),
    close: () => store.close(),
  };
}

/** The reference a Warden error reply carries, checked against its x-request-id header. */
export function referenceOf(reply: RawReply): string {
  const body = JSON.parse(reply.text) as { error?: { data?: { reference?: string } } };
  const reference = body.error?.data?.reference;
  assert.equal(typeof reference, 'string', `no reference in ${reply.status} ${reply.text}`);
  assert.equal(reply.headers['x-request-id'], reference, 'the header and the body agree');
  return reference as string;
}

let nextSource = 10;

/** A loopback address no other request of this process has come from (127.0.0.10, .11, …). */
export function freshSource(): string {
  nextSource += 1;
  const value = nextSource;
  return `127.0.${Math.floor(value / 250) % 250}.${(value % 250) + 2}`;
}

/** Sends one request from `localAddress` on a fresh connection and reads the whole reply. */
export function sendFrom(
  localAddress: string,
  url: string,
  options: RawRequest = {},
): Promise<RawReply> {
  return sendRaw(url, { ...options, localAddress });
}

/** A test gateway whose audit log is a SQLite file the test reads while it runs. */
export interface AuditedGateway {
  readonly gateway: TestGateway;
  readonly audit: AuditReader;
  /** The HMAC key file of its argument hashes. */
  readonly hashKeyFile: string;
  /** Stops the gateway (if still running), closes the reader, removes the files. */
  close(): Promise<void>;
}

export async function startAuditedGateway(
  name: string,
  raw: Record<string, unknown>,
): Promise<AuditedGateway> {
  const setup = createAuditedSetup(name);
  const gateway = await startTestGateway({ ...setup.config, ...raw });
  const audit = await openAuditReader(setup.storeUrl);
  let closed = false;
  return {
    gateway,
    audit,
    hashKeyFile: setup.hashKeyFile,
    async close() {
      if (closed) return;
      closed = true;
      await gateway.close();
      await audit.close();
      setup.cleanUp();
    },
  };
}
