// ESLint flat config: typescript-eslint, node protocol imports, and import boundaries from DESIGN.md.
import js from '@eslint/js';
import nodePlugin from 'eslint-plugin-n';
import tseslint from 'typescript-eslint';

/** The layers above the module layers: nothing below them may import them. */
const SHELLS = ['gateway', 'admin', 'governance', 'cli', 'demo'];
/** The module layers, peers of one another. */
const MODULES = ['identity', 'policy', 'audit', 'approvals', 'mcp'];

/**
 * Layers a module may not import, per DESIGN.md (arrows point downward only):
 * cli → gateway/admin/governance → identity/policy/audit/approvals/mcp → store → config → http → domain.
 */
const forbiddenImports = {
  domain: ['http', 'config', 'store', ...MODULES, ...SHELLS],
  // Body reading, JSON replies, header helpers, the origin guard: plain HTTP, no Warden concept.
  http: ['config', 'store', ...MODULES, ...SHELLS],
  config: ['store', ...MODULES, ...SHELLS],
  store: [...MODULES, ...SHELLS],
  identity: SHELLS,
  policy: SHELLS,
  audit: SHELLS,
  approvals: SHELLS,
  // The transport relays and asks the pipeline; deciding and recording are not its business.
  mcp: ['policy', 'audit', ...SHELLS],
  gateway: ['cli'],
  // Shells over the operations: they reach the store only through them (DESIGN.md, Operations).
  admin: ['store', 'gateway', 'cli'],
  cli: ['store'],
  governance: ['gateway', 'cli'],
  demo: ['gateway', 'cli'],
};

const boundaryRules = Object.entries(forbiddenImports).map(([layer, banned]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: banned.map((target) => ({
          group: [`**/${target}/*`, `**/${target}/**`],
          message: `src/${layer} may not import src/${target} (see DESIGN.md: imports point downward only).`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'results/**', '.warden/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { n: nodePlugin },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'n/prefer-node-protocol': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "BinaryExpression[operator='==='][left.name=/(secret|token|key|password)$/i]",
          message: 'Compare secrets with crypto.timingSafeEqual, not ===.',
        },
      ],
    },
  },
  ...boundaryRules,
  {
    files: ['scripts/**/*.mjs', '*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
