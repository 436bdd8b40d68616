// The demo upstream: a small company's payments, CRM and policy-research tools over MCP.
import { Buffer } from 'node:buffer';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type {
  CallToolResult,
  GetPromptResult,
  ReadResourceResult,
  ToolAnnotations,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import {
  CURRENCIES,
  INVOICE_STATUSES,
  POLICY_DOCS,
  REGIONS,
  TIERS,
  customerSchema,
  invoiceSchema,
} from './business-data.js';
import type { BusinessState, Customer, Invoice, PolicyDoc } from './business-data.js';
import { createMemoryBusinessStore, type BusinessStore } from './business-store.js';

export const BUSINESS_SERVER_NAME = 'warden-demo-business';
export const BUSINESS_RESOURCE_SCHEME = 'warden-demo';

/** JSON-RPC code the MCP spec assigns to "resource not found". */
const RESOURCE_NOT_FOUND = -32002;
const MAX_PAGE_SIZE = 50;
const SNIPPET_LENGTH = 280;
// Loose IBAN shape check: country, check digits, 11–30 alphanumerics, no spaces.
const IBAN_PATTERN = /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/;

/** The company's systems; the demo serves each as its own upstream (payments, crm, research). */
export const BUSINESS_DOMAINS = ['payments', 'crm', 'research'] as const;
export type BusinessDomain = (typeof BUSINESS_DOMAINS)[number];

export interface BusinessServerOptions {
  /** Clock for payment timestamps; injected so tests can freeze time. */
  readonly now?: () => Date;
  /** Which domains' tools to serve; all of them when absent. */
  readonly domains?: readonly BusinessDomain[];
  /** Where the invoices, customers and payment numbers live; a fresh copy of the seeds when absent. */
  readonly store?: BusinessStore;
}

const paymentSchema = z.object({
  payment_id: z.string(),
  status: z.literal('issued'),
  vendor: z.string(),
  amount: z.number(),
  currency: z.enum(CURRENCIES),
  invoice_id: z.string().optional(),
  memo: z.string().optional(),
  recipient: z.object({ iban: z.string() }).optional(),
  issued_at: z.string(),
});
type Payment = z.infer<typeof paymentSchema>;

const issuePaymentInput = {
  vendor: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .describe('Legal name of the vendor to pay, exactly as it appears on the invoice.'),
  amount: z
    .number()
    .positive()
    .max(1_000_000)
    .multipleOf(0.01)
    .describe('Amount in major units of `currency` (e.g. 420.50), at most two decimals.'),
  currency: z.enum(CURRENCIES).describe('ISO 4217 currency code of the payment.'),
  invoice_id: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe(
      'Invoice this payment settles (e.g. INV-2026-0001). Must be unpaid and match vendor, amount and currency.',
    ),
  memo: z
    .string()
    .max(140)
    .optional()
    .describe('Remittance note shown to the vendor (max 140 characters).'),
  recipient: z
    .object({
      iban: z
        .string()
        .regex(IBAN_PATTERN)
        .describe('IBAN of the receiving account, upper case, without spaces.'),
    })
    .optional()
    .describe('Bank account to pay into; omit to use the bank details on file for the vendor.'),
};

const listInvoicesInput = {
  status: z.enum(INVOICE_STATUSES).optional().describe('Only invoices with this status.'),
  vendor: z
    .string()
    .max(200)
    .optional()
    .describe('Only invoices whose vendor name contains this text.'),
  cursor: z.string().max(100).optional().describe('Opaque cursor from a previous page.'),
  limit: z.number().int().min(1).max(MAX_PAGE_SIZE).default(10).describe('Page size (1–50).'),
};

const searchCustomersInput = {
  query: z.string().trim().min(1).max(200).describe('Words to look for, e.g. "keller bau".'),
  region: z.enum(REGIONS).optional().describe('Only customers in this region.'),
  limit: z.number().int().min(1).max(MAX_PAGE_SIZE).default(10).describe('Maximum results (1–50).'),
};

const updateRecordInput = {
  customer_id: z.string().min(1).max(64).describe('Customer id, e.g. CUS-1001.'),
  fields: z
    .strictObject({
      email: z.email().optional().describe('New contact email.'),
      phone: z
        .string()
        .regex(/^\+?[0-9 ()-]{6,24}$/)
        .optional()
        .describe('New phone number, digits with optional +, spaces, dashes.'),
      tier: z.enum(TIERS).optional().describe('New subscription tier.'),
      notes: z.string().max(2000).optional().describe('Replacement free-text notes.'),
    })
    .refine((fields) => Object.keys(fields).length > 0, 'Give at least one field to change.')
    .describe('Fields to change; at least one.'),
};

const docResultSchema = z.object({
  slug: z.string(),
  title: z.string(),
  uri: z.string().describe('Resource URI of the full document.'),
  score: z.number(),
  snippet: z.string(),
});
type DocResult = z.infer<typeof docResultSchema>;

type ArgsOf<Shape extends z.ZodRawShape> = z.infer<z.ZodObject<Shape>>;
type IssuePaymentArgs = ArgsOf<typeof issuePaymentInput>;

const READ_ONLY_ANNOTATIONS: ToolAnnotations = Object.freeze({
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
});

/** Builds a demo server on `options.store`, or on its own deterministic in-memory state. */
export function createBusinessServer(options: BusinessServerOptions = {}): McpServer {
  const store = options.store ?? createMemoryBusinessStore();
  const now = options.now ?? (() => new Date());
  const server = new McpServer(
    { name: BUSINESS_SERVER_NAME, title: 'Warden demo: business tools', version: '0.1.0' },
    {
      instructions:
        'Business tools of Example Co: pay vendor invoices, look up and update customers, and search company policy documents. Read the relevant policy before moving money or changing records.',
    },
  );
  const serves = (domain: BusinessDomain) => !options.domains || options.domains.includes(domain);
  if (serves('payments')) {
    registerPaymentTools(server, store, now);
    registerInvoiceResource(server, store);
    registerSummarizeInvoicePrompt(server, store);
  }
  if (serves('crm')) registerCrmTools(server, store);
  if (serves('research')) {
    registerResearchTools(server);
    registerPolicyResources(server);
  }
  return server;
}

function registerPaymentTools(server: McpServer, store: BusinessStore, now: () => Date): void {
  server.registerTool(
    'issue_payment',
    {
      title: 'Issue payment',
      description:
        'Send money to a vendor by bank transfer. Irreversible. When `invoice_id` is given, the invoice must be open or overdue and vendor, amount and currency must match it exactly; the invoice is then marked paid. Returns the payment confirmation.',
      inputSchema: issuePaymentInput,
      outputSchema: paymentSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args) => store.update((state) => issuePayment(state, now, args)),
  );

  server.registerTool(
    'list_invoices',
    {
      title: 'List invoices',
      description:
        'List vendor invoices, optionally filtered by status and by vendor name (case-insensitive substring). Paginated: pass `next_cursor` from a previous result as `cursor`.',
      inputSchema: listInvoicesInput,
      outputSchema: {
        invoices: z.array(invoiceSchema),
        total: z.number().int().describe('Number of invoices matching the filter.'),
        next_cursor: z.string().optional().describe('Cursor for the next page, if any.'),
      },
      annotations: READ_ONLY_ANNOTATIONS,
    },
    (args) => store.read((state) => listInvoices(state, args)),
  );
}

function registerCrmTools(server: McpServer, store: BusinessStore): void {
  server.registerTool(
    'search_customers',
    {
      title: 'Search customers',
      description:
        'Find customers whose name, company, email or id contain every word of the query (case-insensitive). Returns full records, including contact details.',
      inputSchema: searchCustomersInput,
      outputSchema: {
        customers: z.array(customerSchema),
        total: z.number().int().describe('Number of customers matching before the limit.'),
      },
      annotations: READ_ONLY_ANNOTATIONS,
    },
    (args) => store.read((state) => searchCustomers(state, args)),
  );

  server.registerTool(
    'update_record',
    {
      title: 'Update customer record',
      description:
        'Change contact details, tier or notes of one customer. Only the given fields change; the previous values are overwritten. Returns the record before and after.',
      inputSchema: updateRecordInput,
      outputSchema: {
        customer_id: z.string(),
        changed_fields: z.array(z.string()),
        before: customerSchema,
        after: customerSchema,
      },
      annotations: {
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    (args) => store.update((state) => updateRecord(state, args)),
  );
}

function registerResearchTools(server: McpServer): void {
  server.registerTool(
    'search_docs',
    {
      title: 'Search policy documents',
      description:
        'Search the company policy library (expenses, vendor onboarding, payment approvals, data retention, incident response, AI acceptable use). Returns the best-matching passage of each document, most relevant first.',
      inputSchema: {
        query: z.string().trim().min(1).max(200).describe('Keywords, e.g. "approval above 1000".'),
        limit: z.number().int().min(1).max(10).default(5).describe('Maximum results (1–10).'),
      },
      outputSchema: {
        results: z.array(docResultSchema),
      },
      annotations: READ_ONLY_ANNOTATIONS,
    },
    (args) => toToolResult({ results: searchDocs(args.query, args.limit) }),
  );
}

function registerPolicyResources(server: McpServer): void {
  for (const doc of POLICY_DOCS) {
    server.registerResource(
      doc.slug,
      policyUri(doc.slug),
      { title: doc.title, description: `Company policy: ${doc.title}.`, mimeType: 'text/markdown' },
      (uri): ReadResourceResult => ({
        contents: [{ uri: uri.href, mimeType: 'text/markdown', text: renderPolicyDoc(doc) }],
      }),
    );
  }
}

function registerInvoiceResource(server: McpServer, store: BusinessStore): void {
  const template = new ResourceTemplate(`${BUSINESS_RESOURCE_SCHEME}://invoices/{invoice_id}`, {
    // Not enumerated in resources/list: invoices are looked up by id.
    list: undefined,
    complete: { invoice_id: (value) => store.read((state) => completeInvoiceIds(state, value)) },
  });
  server.registerResource(
    'invoice',
    template,
    { title: 'Invoice', description: 'One vendor invoice as JSON.', mimeType: 'application/json' },
    (uri, variables): ReadResourceResult => {
      const id = String(variables['invoice_id']);
      const invoice = store.read((state) => state.invoices.get(id));
      if (invoice === undefined) {
        throw new McpError(RESOURCE_NOT_FOUND, `Unknown invoice ${id}`, { uri: uri.href });
      }
      return {
        contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(invoice) }],
      };
    },
  );
}

function registerSummarizeInvoicePrompt(server: McpServer, store: BusinessStore): void {
  server.registerPrompt(
    'summarize_invoice',
    {
      title: 'Summarize invoice',
      description: 'Ask for a short approver-ready summary of one invoice, with payment risks.',
      argsSchema: {
        invoice_id: completable(z.string().describe('Invoice id, e.g. INV-2026-0001.'), (value) =>
          store.read((state) => completeInvoiceIds(state, value)),
        ),
      },
    },
    ({ invoice_id }) => store.read((state) => summarizeInvoicePrompt(state, invoice_id)),
  );
}

function issuePayment(
  state: BusinessState,
  now: () => Date,
  args: IssuePaymentArgs,
): CallToolResult {
  const invoice = args.invoice_id === undefined ? undefined : state.invoices.get(args.invoice_id);
  if (args.invoice_id !== undefined) {
    const refusal = explainUnpayableInvoice(args.invoice_id, invoice, args);
    if (refusal !== undefined) return toToolError(`${refusal} No payment was issued.`);
  }
  const payment: Payment = {
    payment_id: allocatePaymentId(state),
    status: 'issued',
    ...args,
    issued_at: now().toISOString(),
  };
  if (invoice !== undefined) {
    invoice.status = 'paid';
    invoice.paid_by = payment.payment_id;
  }
  return toToolResult(payment);
}

/** Returns why the invoice cannot be paid with these arguments, or undefined if it can. */
function explainUnpayableInvoice(
  id: string,
  invoice: Invoice | undefined,
  args: IssuePaymentArgs,
): string | undefined {
  if (invoice === undefined) return `Unknown invoice ${id}.`;
  if (invoice.status === 'paid') {
    return `Invoice ${id} is already paid (${invoice.paid_by ?? 'payment id unknown'}).`;
  }
  if (invoice.vendor !== args.vendor) {
    return `Invoice ${id} is from ${invoice.vendor}, not ${args.vendor}.`;
  }
  if (invoice.currency !== args.currency || toCents(invoice.amount) !== toCents(args.amount)) {
    return `Invoice ${id} is for ${formatMoney(invoice.amount, invoice.currency)}, not ${formatMoney(args.amount, args.currency)}.`;
  }
  return undefined;
}

function allocatePaymentId(state: BusinessState): string {
  const id = `PAY-${String(state.nextPaymentNumber).padStart(4, '0')}`;
  state.nextPaymentNumber += 1;
  return id;
}

function listInvoices(
  state: BusinessState,
  args: ArgsOf<typeof listInvoicesInput>,
): CallToolResult {
  const offset = args.cursor === undefined ? 0 : decodeCursor(args.cursor);
  if (offset === undefined) return toToolError('Invalid cursor; start again without one.');
  const vendor = args.vendor?.toLowerCase();
  const matching = [...state.invoices.values()].filter(
    (invoice) =>
      (args.status === undefined || invoice.status === args.status) &&
      (vendor === undefined || invoice.vendor.toLowerCase().includes(vendor)),
  );
  const end = offset + args.limit;
  return toToolResult({
    invoices: matching.slice(offset, end),
    total: matching.length,
    ...(end < matching.length && { next_cursor: encodeCursor(end) }),
  });
}

function searchCustomers(
  state: BusinessState,
  args: ArgsOf<typeof searchCustomersInput>,
): CallToolResult {
  const words = args.query.toLowerCase().split(/\s+/);
  const matching = [...state.customers.values()].filter((customer) => {
    if (args.region !== undefined && customer.region !== args.region) return false;
    const haystack = [customer.id, customer.name, customer.company, customer.email]
      .join(' ')
      .toLowerCase();
    return words.every((word) => haystack.includes(word));
  });
  return toToolResult({ customers: matching.slice(0, args.limit), total: matching.length });
}

function updateRecord(
  state: BusinessState,
  args: ArgsOf<typeof updateRecordInput>,
): CallToolResult {
  const before = state.customers.get(args.customer_id);
  if (before === undefined) {
    return toToolError(`Unknown customer ${args.customer_id}. No record was changed.`);
  }
  // Re-parse so the merged record is checked against the record schema, not just cast.
  const after = customerSchema.parse({ ...before, ...args.fields });
  state.customers.set(after.id, after);
  const changedFields = Object.keys(after).filter(
    (key) => after[key as keyof Customer] !== before[key as keyof Customer],
  );
  return toToolResult({ customer_id: after.id, changed_fields: changedFields, before, after });
}

/** Ranks each document by its best paragraph: one point per query-term hit, two per title hit. */
function searchDocs(query: string, limit: number): DocResult[] {
  const terms = tokenize(query);
  if (terms.length === 0) return [];
  return POLICY_DOCS.map((doc) => {
    const titleScore = 2 * countHits(tokenize(doc.title), terms);
    const best = bestParagraph(doc, terms);
    return {
      slug: doc.slug,
      title: doc.title,
      uri: policyUri(doc.slug),
      score: titleScore + best.score,
      snippet: truncate(best.text, SNIPPET_LENGTH),
    };
  })
    .filter((result) => result.score > 0)
    .sort((a, b) => b.score - a.score || a.slug.localeCompare(b.slug))
    .slice(0, limit);
}

function bestParagraph(doc: PolicyDoc, terms: readonly string[]): { text: string; score: number } {
  let best = { text: doc.paragraphs[0] ?? '', score: 0 };
  for (const text of doc.paragraphs) {
    const score = countHits(tokenize(text), terms);
    if (score > best.score) best = { text, score };
  }
  return best;
}

// Prefix match so that "receipt" finds "receipts" and "approv" finds "approval".
function countHits(words: readonly string[], terms: readonly string[]): number {
  return words.filter((word) => terms.some((term) => word.startsWith(term))).length;
}

const STOP_WORDS = new Set([
  'a',
  'an',
  'and',
  'are',
  'do',
  'for',
  'how',
  'in',
  'is',
  'of',
  'on',
  'or',
  'the',
  'to',
  'what',
  'when',
  'who',
]);

function tokenize(text: string): string[] {
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((word) => !STOP_WORDS.has(word));
}

function summarizeInvoicePrompt(state: BusinessState, invoiceId: string): GetPromptResult {
  const invoice = state.invoices.get(invoiceId);
  if (invoice === undefined) {
    throw new McpError(ErrorCode.InvalidParams, `Unknown invoice ${invoiceId}`);
  }
  return {
    description: `Summary request for invoice ${invoice.id}`,
    messages: [
      {
        role: 'user',
        content: {
          type: 'text',
          text: `Summarize invoice ${invoice.id} for a finance approver in three bullet points: what is being paid for, amount and due date, and anything that should block payment (unknown vendor, overdue, duplicate, mismatched bank details). Check the payment-approvals and vendor-onboarding policies.`,
        },
      },
      {
        role: 'user',
        content: {
          type: 'resource',
          resource: {
            uri: invoiceUri(invoice.id),
            mimeType: 'application/json',
            text: JSON.stringify(invoice),
          },
        },
      },
    ],
  };
}

function completeInvoiceIds(state: BusinessState, prefix: string): string[] {
  const upper = prefix.toUpperCase();
  return [...state.invoices.keys()].filter((id) => id.startsWith(upper));
}

function renderPolicyDoc(doc: PolicyDoc): string {
  return `# ${doc.title}\n\n${doc.paragraphs.join('\n\n')}\n`;
}

function policyUri(slug: string): string {
  return `${BUSINESS_RESOURCE_SCHEME}://policies/${slug}`;
}

function invoiceUri(id: string): string {
  return `${BUSINESS_RESOURCE_SCHEME}://invoices/${id}`;
}

// Structured results also carry their JSON as text, as the MCP spec recommends for older clients.
function toToolResult(structured: Record<string, unknown>): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(structured) }],
    structuredContent: structured,
  };
}

function toToolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

function encodeCursor(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number | undefined {
  const match = /^offset:(\d{1,6})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function toCents(amount: number): number {
  return Math.round(amount * 100);
}

function formatMoney(amount: number, currency: string): string {
  return `${amount.toFixed(2)} ${currency}`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
