// Type-aware lint for src/, test/ and bench/ (typescript-eslint's recommended + type-checked
// sets). Formatting is Prettier's job, so no stylistic rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', '**/*.mjs', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Agent methods are async by contract (a throw must become a rejection), even when the
      // keyring answers without awaiting anything.
      '@typescript-eslint/require-await': 'off',
      // require() inside a function is how modules stay off the start path until used (issue 16).
      '@typescript-eslint/no-require-imports': 'off',
      // The escaping code matches control characters on purpose (prompts, tables, unit names).
      'no-control-regex': 'off',
    },
  },
  {
    // node:test's describe()/it() return promises the runner itself tracks; awaiting them at
    // the top level would serialise nothing and is not how node:test is written.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
);
