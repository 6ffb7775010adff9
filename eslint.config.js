// Lint is part of `npm test`. typescript-eslint's type-aware rules catch floating promises and unsafe `any`
// flows, the two classes of bug a scheduler is most prone to.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers in DESIGN.md order: a layer may import only from layers to its left. */
const layers = ['core', 'providers', 'prompts', 'chain', 'eval', 'distributed', 'cli'];

const layerRules = layers.map((layer, index) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: ['symphonizer', 'symphonizer/*'],
            message: 'Import from relative paths inside src, never from the package itself.',
          },
          ...layers.slice(index + 1).map((upper) => ({
            group: [`**/${upper}/*`, `../${upper}`, `../../${upper}`],
            message: `src/${layer} is below src/${upper} and must not import from it (DESIGN.md layers).`,
          })),
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-exports': ['error', { restrictDefaultExports: { direct: true, named: true } }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/providers/*', '**/prompts/*', '**/chain/*', '**/eval/*', '**/cli/*'],
              message: 'src/core is the bottom layer.',
            },
            { regex: '^(?!\\.{1,2}/|node:)', message: 'src/core has no runtime dependency.' },
          ],
        },
      ],
    },
  },
  ...layerRules.filter((_, i) => i > 0),
  {
    // Barrels are for users. Inside the package a module imports the module that declares what it needs, so
    // an import says where a name lives and loading one module never drags in a whole layer (or, from the
    // top barrel, every layer above it).
    files: ['src/**/*.ts', 'agents/**/*.ts'],
    ignores: ['**/index.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...['ImportDeclaration', 'ExportNamedDeclaration', 'ExportAllDeclaration', 'ImportExpression'].map(
          (node) => ({
            selector: `${node}[source.value=/^\\..*(^|\\/)index\\.ts$/]`,
            message:
              'Import the module that declares the name, not a barrel index.ts (barrels are the entry points for users).',
          }),
        ),
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    // bench/peers has its own package (not installed by the root `npm ci`) and its own tsconfig: linted
    // without type information, typed with `npx tsc -p bench/peers` once its packages are installed.
    files: ['bench/peers/**/*.ts'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['eslint.config.js'],
    extends: [tseslint.configs.disableTypeChecked],
    rules: { 'no-restricted-exports': 'off' }, // ESLint's flat config format requires a default export
  },
);
