import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createBusinessServer } from '../src/demo/business-server.js';
import type { BusinessServerOptions } from '../src/demo/business-server.js';
import { openBusinessStoreFile } from '../src/demo/business-store.js';

const FROZEN_NOW = new Date('2026-02-01T09:30:00.000Z');
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

async function connectClient(
  t: { after: (fn: () => Promise<void>) => void },
  options: BusinessServerOptions = { now: () => FROZEN_NOW },
): Promise<Client> {
  const server = createBusinessServer(options);
  const client = new Client({ name: 'demo-business-test', version: '0.0.0' });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  t.after(async () => {
    await client.close();
    await server.close();
  });
  return client;
}

async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<CallToolResult> {
  return CallToolResultSchema.parse(await client.callTool({ name, arguments: args }));
}

function textOf(result: CallToolResult): string {
  const first = result.content[0];
  assert.equal(first?.type, 'text');
  return first.type === 'text' ? first.text : '';
}

function structuredOf(result: CallToolResult): Record<string, unknown> {
  assert.notEqual(result.isError, true, textOf(result));
  assert.ok(result.structuredContent, 'expected structuredContent');
  assert.deepEqual(JSON.parse(textOf(result)), result.structuredContent);
  return result.structuredContent;
}

const ACME_OPEN = {
  vendor: 'Acme Supplies GmbH',
  amount: 420,
  currency: 'EUR',
  invoice_id: 'INV-2026-0001',
};

test('lists the five business tools with schemas and annotations', async (t) => {
  const client = await connectClient(t);
  const { tools } = await client.listTools();
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  assert.deepEqual([...byName.keys()].sort(), [
    'issue_payment',
    'list_invoices',
    'search_customers',
    'search_docs',
    'update_record',
  ]);
  for (const tool of tools) {
    assert.ok(tool.title, `${tool.name} has a title`);
    assert.ok((tool.description ?? '').length > 40, `${tool.name} has a useful description`);
    assert.ok(tool.outputSchema, `${tool.name} declares an output schema`);
  }

  const payment = byName.get('issue_payment');
  assert.deepEqual(payment?.annotations, {
    readOnlyHint: false,
    destructiveHint: true,
    idempotentHint: false,
    openWorldHint: true,
  });
  assert.deepEqual(payment?.inputSchema.required, ['vendor', 'amount', 'currency']);
  assert.deepEqual(payment?.inputSchema.properties?.['currency'], {
    type: 'string',
    enum: ['EUR', 'USD', 'GBP'],
    description: 'ISO 4217 currency code of the payment.',
  });
  assert.deepEqual(payment?.outputSchema?.required, [
    'payment_id',
    'status',
    'vendor',
    'amount',
    'currency',
    'issued_at',
  ]);

  assert.equal(byName.get('update_record')?.annotations?.destructiveHint, true);
  assert.equal(byName.get('update_record')?.annotations?.idempotentHint, true);
  for (const name of ['list_invoices', 'search_customers', 'search_docs']) {
    assert.equal(byName.get(name)?.annotations?.readOnlyHint, true, `${name} is read-only`);
    assert.equal(byName.get(name)?.annotations?.openWorldHint, false, `${name} is closed-world`);
  }
});

test('issue_payment pays an open invoice and marks it paid', async (t) => {
  const client = await connectClient(t);
  const payment = structuredOf(
    await callTool(client, 'issue_payment', {
      ...ACME_OPEN,
      memo: 'January supplies',
      recipient: { iban: 'DE89370400440532013000' },
    }),
  );
  assert.deepEqual(payment, {
    payment_id: 'PAY-0001',
    status: 'issued',
    ...ACME_OPEN,
    memo: 'January supplies',
    recipient: { iban: 'DE89370400440532013000' },
    issued_at: '2026-02-01T09:30:00.000Z',
  });

  const paid = structuredOf(
    await callTool(client, 'list_invoices', { status: 'paid', vendor: 'acme' }),
  );
  const invoices = paid['invoices'] as { id: string; paid_by?: string }[];
  assert.deepEqual(
    invoices.map((invoice) => [invoice.id, invoice.paid_by]),
    [
      ['INV-2026-0001', 'PAY-0001'],
      ['INV-2026-0011', 'PAY-2025-0440'],
    ],
  );
});

test('issue_payment without an invoice numbers payments sequentially', async (t) => {
  const client = await connectClient(t);
  const first = structuredOf(
    await callTool(client, 'issue_payment', {
      vendor: 'Acme Supplies GmbH',
      amount: 12.5,
      currency: 'GBP',
    }),
  );
  const second = structuredOf(
    await callTool(client, 'issue_payment', {
      vendor: 'Acme Supplies GmbH',
      amount: 12.5,
      currency: 'GBP',
    }),
  );
  assert.equal(first['payment_id'], 'PAY-0001');
  assert.equal(second['payment_id'], 'PAY-0002');
  assert.equal('invoice_id' in first, false);
});

test('issue_payment refuses an unknown invoice id', async (t) => {
  const client = await connectClient(t);
  const result = await callTool(client, 'issue_payment', {
    ...ACME_OPEN,
    invoice_id: 'INV-9999-0001',
  });
  assert.equal(result.isError, true);
  assert.match(textOf(result), /Unknown invoice INV-9999-0001\. No payment was issued\./);
  assert.equal(result.structuredContent, undefined);

  // A refused call must not consume a payment id.
  const next = structuredOf(await callTool(client, 'issue_payment', ACME_OPEN));
  assert.equal(next['payment_id'], 'PAY-0001');
});

test('issue_payment refuses to pay the same invoice twice', async (t) => {
  const client = await connectClient(t);
  structuredOf(await callTool(client, 'issue_payment', ACME_OPEN));
  const again = await callTool(client, 'issue_payment', ACME_OPEN);
  assert.equal(again.isError, true);
  assert.match(textOf(again), /INV-2026-0001 is already paid \(PAY-0001\)/);

  const seededPaid = await callTool(client, 'issue_payment', {
    vendor: 'Initech Consulting LLC',
    amount: 5600,
    currency: 'USD',
    invoice_id: 'INV-2026-0005',
  });
  assert.equal(seededPaid.isError, true);
  assert.match(textOf(seededPaid), /already paid \(PAY-2025-0412\)/);
});

test('issue_payment refuses a payment that does not match its invoice', async (t) => {
  const client = await connectClient(t);
  const wrongAmount = await callTool(client, 'issue_payment', { ...ACME_OPEN, amount: 4200 });
  assert.equal(wrongAmount.isError, true);
  assert.match(textOf(wrongAmount), /is for 420\.00 EUR, not 4200\.00 EUR/);

  const wrongVendor = await callTool(client, 'issue_payment', {
    ...ACME_OPEN,
    vendor: 'Quickpay Offshore Holdings',
  });
  assert.equal(wrongVendor.isError, true);
  assert.match(textOf(wrongVendor), /is from Acme Supplies GmbH, not Quickpay Offshore Holdings/);

  const wrongCurrency = await callTool(client, 'issue_payment', { ...ACME_OPEN, currency: 'USD' });
  assert.equal(wrongCurrency.isError, true);
});

test('issue_payment arguments outside the schema are rejected before the handler', async (t) => {
  const client = await connectClient(t);
  const invalid: Record<string, unknown>[] = [
    { ...ACME_OPEN, currency: 'BTC' },
    { ...ACME_OPEN, amount: 0 },
    { ...ACME_OPEN, amount: -420 },
    { ...ACME_OPEN, amount: 10.005 },
    { ...ACME_OPEN, memo: 'x'.repeat(141) },
    { ...ACME_OPEN, recipient: { iban: 'not an iban' } },
    { amount: 420, currency: 'EUR' },
  ];
  for (const args of invalid) {
    const result = await callTool(client, 'issue_payment', args);
    assert.equal(result.isError, true, JSON.stringify(args));
    assert.match(textOf(result), /Input validation error/);
  }
  // None of the rejected calls paid the invoice.
  const open = structuredOf(
    await callTool(client, 'list_invoices', { vendor: 'Acme', status: 'open' }),
  );
  assert.equal((open['invoices'] as { id: string }[])[0]?.id, 'INV-2026-0001');
});

test('list_invoices filters by status and pages with an opaque cursor', async (t) => {
  const client = await connectClient(t);
  const all = structuredOf(await callTool(client, 'list_invoices', {}));
  assert.equal(all['total'], 13);
  assert.equal((all['invoices'] as unknown[]).length, 10);
  assert.equal(typeof all['next_cursor'], 'string');

  const rest = structuredOf(
    await callTool(client, 'list_invoices', { cursor: all['next_cursor'], limit: 10 }),
  );
  assert.deepEqual(
    (rest['invoices'] as { id: string }[]).map((invoice) => invoice.id),
    ['INV-2026-0011', 'INV-2026-0012', 'INV-2026-0013'],
  );
  assert.equal('next_cursor' in rest, false);

  const overdue = structuredOf(await callTool(client, 'list_invoices', { status: 'overdue' }));
  assert.deepEqual(
    (overdue['invoices'] as { id: string; status: string }[]).map((invoice) => invoice.status),
    ['overdue', 'overdue', 'overdue'],
  );

  const bad = await callTool(client, 'list_invoices', { cursor: 'garbage' });
  assert.equal(bad.isError, true);
  assert.match(textOf(bad), /Invalid cursor/);
});

test('search_customers matches every word and filters by region', async (t) => {
  const client = await connectClient(t);
  const keller = structuredOf(await callTool(client, 'search_customers', { query: 'keller BAU' }));
  assert.deepEqual(
    (keller['customers'] as { id: string }[]).map((customer) => customer.id),
    ['CUS-1001'],
  );

  const apac = structuredOf(
    await callTool(client, 'search_customers', { query: 'example', region: 'apac', limit: 2 }),
  );
  assert.equal(apac['total'], 3);
  const customers = apac['customers'] as { region: string }[];
  assert.equal(customers.length, 2);
  assert.ok(customers.every((customer) => customer.region === 'apac'));

  const none = structuredOf(await callTool(client, 'search_customers', { query: 'nobody here' }));
  assert.deepEqual(none, { customers: [], total: 0 });

  const badRegion = await callTool(client, 'search_customers', { query: 'a', region: 'mars' });
  assert.equal(badRegion.isError, true);
});

test('update_record changes only the given fields and returns before and after', async (t) => {
  const client = await connectClient(t);
  const update = structuredOf(
    await callTool(client, 'update_record', {
      customer_id: 'CUS-1004',
      fields: { tier: 'pro', notes: 'Upgraded after demo.' },
    }),
  );
  const before = update['before'] as Record<string, unknown>;
  const after = update['after'] as Record<string, unknown>;
  assert.deepEqual(update['changed_fields'], ['tier', 'notes']);
  assert.equal(before['tier'], 'free');
  assert.equal(after['tier'], 'pro');
  assert.equal(after['notes'], 'Upgraded after demo.');
  assert.equal(after['email'], before['email']);

  const found = structuredOf(await callTool(client, 'search_customers', { query: 'CUS-1004' }));
  assert.deepEqual(found['customers'], [after]);
});

test('update_record refuses an unknown customer and fields outside the schema', async (t) => {
  const client = await connectClient(t);
  const unknown = await callTool(client, 'update_record', {
    customer_id: 'CUS-9999',
    fields: { tier: 'enterprise' },
  });
  assert.equal(unknown.isError, true);
  assert.match(textOf(unknown), /Unknown customer CUS-9999\. No record was changed\./);

  const invalid: Record<string, unknown>[] = [
    { customer_id: 'CUS-1001', fields: {} },
    { customer_id: 'CUS-1001', fields: { region: 'us' } },
    { customer_id: 'CUS-1001', fields: { id: 'CUS-0001' } },
    { customer_id: 'CUS-1001', fields: { email: 'not-an-email' } },
    { customer_id: 'CUS-1001', fields: { tier: 'platinum' } },
  ];
  for (const args of invalid) {
    const result = await callTool(client, 'update_record', args);
    assert.equal(result.isError, true, JSON.stringify(args));
    assert.match(textOf(result), /Input validation error/);
  }
});

test('search_docs ranks the most relevant policy first with a snippet', async (t) => {
  const client = await connectClient(t);
  const approvals = structuredOf(
    await callTool(client, 'search_docs', { query: 'payments above 1000 approvers' }),
  );
  const results = approvals['results'] as { slug: string; uri: string; snippet: string }[];
  assert.equal(results[0]?.slug, 'payment-approvals');
  assert.equal(results[0]?.uri, 'warden-demo://policies/payment-approvals');
  assert.match(results[0]?.snippet ?? '', /approver/);

  const receipts = structuredOf(
    await callTool(client, 'search_docs', { query: 'receipt', limit: 1 }),
  );
  assert.deepEqual(
    (receipts['results'] as { slug: string }[]).map((result) => result.slug),
    ['expense-policy'],
  );

  const nothing = structuredOf(await callTool(client, 'search_docs', { query: 'zebra' }));
  assert.deepEqual(nothing, { results: [] });
});

test('exposes policy resources, an invoice template and the summarize_invoice prompt', async (t) => {
  const client = await connectClient(t);
  const { resources } = await client.listResources();
  assert.ok(resources.some((resource) => resource.uri === 'warden-demo://policies/expense-policy'));
  const expense = await client.readResource({ uri: 'warden-demo://policies/expense-policy' });
  const expenseText = expense.contents[0];
  assert.ok(expenseText && 'text' in expenseText);
  assert.match(expenseText.text, /^# Expense Policy/);

  const { resourceTemplates } = await client.listResourceTemplates();
  assert.deepEqual(
    resourceTemplates.map((template) => template.uriTemplate),
    ['warden-demo://invoices/{invoice_id}'],
  );
  const invoice = await client.readResource({ uri: 'warden-demo://invoices/INV-2026-0003' });
  const invoiceText = invoice.contents[0];
  assert.ok(invoiceText && 'text' in invoiceText);
  assert.equal(JSON.parse(invoiceText.text).vendor, 'Northwind Logistics Ltd');
  await assert.rejects(
    client.readResource({ uri: 'warden-demo://invoices/INV-0000-0000' }),
    (error: unknown) => error instanceof McpError && error.code === -32002,
  );

  const completion = await client.complete({
    ref: { type: 'ref/prompt', name: 'summarize_invoice' },
    argument: { name: 'invoice_id', value: 'inv-2026-001' },
  });
  assert.deepEqual(completion.completion.values, [
    'INV-2026-0010',
    'INV-2026-0011',
    'INV-2026-0012',
    'INV-2026-0013',
  ]);

  const { prompts } = await client.listPrompts();
  assert.deepEqual(
    prompts.map((prompt) => prompt.name),
    ['summarize_invoice'],
  );
  const prompt = await client.getPrompt({
    name: 'summarize_invoice',
    arguments: { invoice_id: 'INV-2026-0012' },
  });
  assert.equal(prompt.messages.length, 2);
  const embedded = prompt.messages[1]?.content;
  assert.ok(embedded?.type === 'resource' && 'text' in embedded.resource);
  assert.match(embedded.resource.text, /Quickpay Offshore Holdings/);
  await assert.rejects(
    client.getPrompt({ name: 'summarize_invoice', arguments: { invoice_id: 'INV-0' } }),
    /Unknown invoice INV-0/,
  );
});

test('each server starts from the same seed state', async (t) => {
  const first = await connectClient(t);
  structuredOf(await callTool(first, 'issue_payment', ACME_OPEN));
  const second = await connectClient(t);
  const payment = structuredOf(await callTool(second, 'issue_payment', ACME_OPEN));
  assert.equal(payment['payment_id'], 'PAY-0001');
});

test('serves the tools over a real stdio child process', async (t) => {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'src/demo/business-server-stdio.ts'],
    cwd: REPO_ROOT,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'demo-business-stdio-test', version: '0.0.0' });
  const transportErrors: Error[] = [];
  client.onerror = (error) => transportErrors.push(error);
  await client.connect(transport);
  t.after(() => client.close());

  assert.equal(client.getServerVersion()?.name, 'warden-demo-business');
  const { tools } = await client.listTools();
  assert.equal(tools.length, 5);

  const payment = structuredOf(await callTool(client, 'issue_payment', ACME_OPEN));
  assert.equal(payment['payment_id'], 'PAY-0001');
  assert.equal(payment['status'], 'issued');
  const again = await callTool(client, 'issue_payment', ACME_OPEN);
  assert.equal(again.isError, true);
  const currency = await callTool(client, 'issue_payment', { ...ACME_OPEN, currency: 'XYZ' });
  assert.equal(currency.isError, true);

  // Any non-protocol line on stdout would surface here as a parse error.
  assert.deepEqual(transportErrors, []);
});

/** A data file in a fresh folder, removed after the test. */
function dataFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-data-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'demo-business.db');
}

/** A server on the shared file, as one gateway session's child process has it. */
async function connectToFile(
  t: { after: (fn: () => Promise<void> | void) => void },
  file: string,
): Promise<Client> {
  const store = openBusinessStoreFile(file);
  t.after(() => store.close());
  return connectClient(t, { now: () => FROZEN_NOW, store });
}

test('with a data file, payments keep counting and an update stays, from one session to the next', async (t) => {
  const file = dataFile(t);
  const first = await connectToFile(t, file);
  const paid = structuredOf(await callTool(first, 'issue_payment', ACME_OPEN));
  assert.equal(paid['payment_id'], 'PAY-0001');
  structuredOf(
    await callTool(first, 'update_record', {
      customer_id: 'CUS-1004',
      fields: { email: 'carlos.new@mendeslog.example' },
    }),
  );

  // A second session (its own server, as the gateway starts a child per session).
  const second = await connectToFile(t, file);
  const next = structuredOf(
    await callTool(second, 'issue_payment', {
      vendor: 'Acme Supplies GmbH',
      amount: 12,
      currency: 'EUR',
    }),
  );
  assert.equal(next['payment_id'], 'PAY-0002');
  const found = structuredOf(await callTool(second, 'search_customers', { query: 'CUS-1004' }));
  assert.equal(
    (found['customers'] as Record<string, unknown>[])[0]?.['email'],
    'carlos.new@mendeslog.example',
  );
  const twice = await callTool(second, 'issue_payment', ACME_OPEN);
  assert.equal(twice.isError, true, 'the invoice the first session paid stays paid');
  assert.match(textOf(twice), /already paid \(PAY-0001\)/);
});

test('with a data file, the state survives a restart; without one, each server starts afresh', async (t) => {
  const file = dataFile(t);
  const before = openBusinessStoreFile(file);
  before.update((state) => {
    state.nextPaymentNumber = 41;
  });
  before.close();
  const restarted = await connectToFile(t, file);
  const payment = structuredOf(await callTool(restarted, 'issue_payment', ACME_OPEN));
  assert.equal(payment['payment_id'], 'PAY-0041');
  const fresh = await connectClient(t);
  const seeded = structuredOf(await callTool(fresh, 'issue_payment', ACME_OPEN));
  assert.equal(seeded['payment_id'], 'PAY-0001');
});

test('two stdio server processes on one data file share payment numbers', async (t) => {
  const file = dataFile(t);
  const ids: unknown[] = [];
  for (let session = 0; session < 2; session++) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        'src/demo/business-server-stdio.ts',
        '--domain',
        'payments',
        '--data',
        file,
      ],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'demo-business-session', version: '0.0.0' });
    await client.connect(transport);
    try {
      const payment = structuredOf(
        await callTool(client, 'issue_payment', { vendor: 'Globex', amount: 5, currency: 'USD' }),
      );
      ids.push(payment['payment_id']);
    } finally {
      await client.close();
    }
  }
  assert.deepEqual(ids, ['PAY-0001', 'PAY-0002']);
});
