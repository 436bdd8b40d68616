/**
 * The demo company's policy, in warden.yaml's own shape: a read-only research role, a scoped
 * operations role, and a finance role whose payments need a human approval and stay within the
 * seed's constraints (approved vendors, at most 1000 EUR, a daily budget, a freeze switch).
 */

export const DEMO_POLICY = {
  lists: {
    approved_vendors: ['Acme Supplies GmbH', 'Globex Cloud Services Inc.'],
  },
  scopes: {
    vendor_whitelist: { arg: 'vendor', in_list: 'approved_vendors' },
    max_amount_1000_eur: [
      { arg: 'amount', max: 1000 },
      { arg: 'currency', in: ['EUR'] },
    ],
    no_payments_freeze: { state: { payments_freeze: 'off' } },
    contact_fields_only: [
      { arg: 'fields.tier', forbidden: true },
      { arg: 'customer_id', pattern: '^CUS-[0-9]{4}$' },
    ],
  },
  policy_states: {
    payments_freeze: { default: 'off', description: 'Stops every payment at once.' },
  },
  roles: {
    research: {
      description: 'Reads documents, customers and invoices; changes nothing.',
      grants: [
        { tool: 'research.search_docs' },
        { resource: 'research:warden-demo://policies/*' },
        { tool: 'crm.search_customers' },
        { tool: 'payments.list_invoices' },
      ],
    },
    operations: {
      description: 'Keeps customer contact details current; cannot change tiers or pay.',
      grants: [
        { tool: 'crm.search_customers' },
        { tool: 'crm.update_record', scope: 'contact_fields_only' },
        { tool: 'payments.list_invoices' },
      ],
    },
    finance_executor: {
      description: 'Pays approved vendors, up to 1000 EUR per payment, after a human approves.',
      grants: [
        { tool: 'payments.list_invoices' },
        { resource: 'payments:warden-demo://invoices/*' },
        {
          tool: 'payments.issue_payment',
          scope: ['vendor_whitelist', 'max_amount_1000_eur', 'no_payments_freeze'],
          requires_approval: true,
          approvers: ['finance_approver'],
          // Time-bounded like a real finance grant; a year from the demo's start, so it never lapses in use.
          expires: new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10),
          owner: 'head-of-finance@example.com',
          reason: 'Vendor payments for the demo company',
        },
      ],
    },
  },
  quotas: [
    {
      name: 'daily_payment_budget',
      per: 'agent',
      tool: 'payments.issue_payment',
      sum: 'amount',
      limit: 5000,
      window: '1d',
    },
    { name: 'crm_update_rate', per: 'agent', tool: 'crm.update_record', limit: 30, window: '1m' },
  ],
} as const;
