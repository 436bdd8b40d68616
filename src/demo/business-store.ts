/**
 * Where the demo business server keeps its state. In memory, each server starts from the seeds
 * (tests). In a file, every server process that opens it shares one state: the gateway starts a
 * child per client session, so a payment id keeps counting and an updated email stays updated
 * from one session to the next, and across restarts of the demo.
 */
import Database from 'better-sqlite3';
import { z } from 'zod';
import { createBusinessState, customerSchema, invoiceSchema } from './business-data.js';
import type { BusinessState } from './business-data.js';

export interface BusinessStore {
  /** Runs `work` on the current state. */
  read<T>(work: (state: BusinessState) => T): T;
  /** Runs `work` on the current state and keeps its changes; one change at a time. */
  update<T>(work: (state: BusinessState) => T): T;
  close(): void;
}

/** A state of its own, from the seeds, for this server alone. */
export function createMemoryBusinessStore(): BusinessStore {
  const state = createBusinessState();
  return {
    read: (work) => work(state),
    update: (work) => work(state),
    close: () => undefined,
  };
}

/** How long a process waits for another's change to the file before giving up. */
const BUSY_TIMEOUT_MS = 5000;

const storedStateSchema = z.object({
  invoices: z.array(invoiceSchema),
  customers: z.array(customerSchema),
  nextPaymentNumber: z.number().int().positive(),
});

/**
 * Opens (or creates, from the seeds) the state in a SQLite file shared by every server process
 * of one demo. Each change is one transaction on the whole state, so changes from two
 * processes at once are applied one after the other, never lost.
 */
export function openBusinessStoreFile(path: string): BusinessStore {
  const db = new Database(path);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    db.exec(
      'CREATE TABLE IF NOT EXISTS business_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)',
    );
    db.prepare('INSERT OR IGNORE INTO business_state (id, state) VALUES (1, ?)').run(
      serialiseState(createBusinessState()),
    );
  }).immediate();
  const select = db.prepare<[], { state: string }>('SELECT state FROM business_state WHERE id = 1');
  const save = db.prepare<[string]>('UPDATE business_state SET state = ? WHERE id = 1');
  const load = (): BusinessState => {
    const row = select.get();
    if (row === undefined) throw new Error(`${path} holds no demo business state`);
    return parseState(row.state, path);
  };
  return {
    read: (work) => work(load()),
    update: (work) =>
      db
        .transaction(() => {
          const state = load();
          const result = work(state);
          save.run(serialiseState(state));
          return result;
        })
        .immediate(),
    close: () => db.close(),
  };
}

function serialiseState(state: BusinessState): string {
  return JSON.stringify({
    invoices: [...state.invoices.values()],
    customers: [...state.customers.values()],
    nextPaymentNumber: state.nextPaymentNumber,
  });
}

function parseState(text: string, path: string): BusinessState {
  const parsed = storedStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`${path} holds no valid demo business state; delete it to start afresh`);
  }
  const { invoices, customers, nextPaymentNumber } = parsed.data;
  return {
    invoices: new Map(invoices.map((invoice) => [invoice.id, invoice])),
    customers: new Map(customers.map((customer) => [customer.id, customer])),
    nextPaymentNumber,
  };
}
