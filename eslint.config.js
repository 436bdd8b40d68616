// ESLint flat config: typescript-eslint, node protocol imports, and import boundaries from DESIGN.md.
import js from '@eslint/js';
import nodePlugin from 'eslint-plugin-n';
import tseslint from 'typescript-eslint';

/** Layers a module may import, per DESIGN.md (arrows point downward only). */
const forbiddenImports = {
  domain: [
    'config',
    'store',
    'identity',
    'policy',
    'audit',
    'approvals',
    'mcp',
    'gateway',
    'admin',
    'governance',
    'cli',
    'demo',
  ],
  config: [
    'store',
    'identity',
    'policy',
    'audit',
    'approvals',
    'mcp',
    'gateway',
    'admin',
    'governance',
    'cli',
    'demo',
  ],
  store: [
    'identity',
    'policy',
    'audit',
    'approvals',
    'mcp',
    'gateway',
    'admin',
    'governance',
    'cli',
    'demo',
  ],
  identity: ['gateway', 'admin', 'governance', 'cli', 'demo'],
  policy: ['gateway', 'admin', 'governance', 'cli', 'demo'],
  audit: ['gateway', 'admin', 'governance', 'cli', 'demo'],
  approvals: ['gateway', 'admin', 'governance', 'cli', 'demo'],
  mcp: ['gateway', 'admin', 'governance', 'cli', 'demo'],
  gateway: ['cli'],
  admin: ['gateway', 'cli'],
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
