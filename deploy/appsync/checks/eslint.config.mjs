// Lint of the exported APPSYNC_JS resolvers and functions (out/resolvers, written by
// deploy/appsync/check): AppSync's own rules (recommended: they need TypeScript's type view,
// see tsconfig.json), plus no-undef / no-unused-vars, which catch a helper the bundler
// (hemisphere/appsync_export/bundle.py) failed to copy in, or copied in for nothing.
import appsync from '@aws-appsync/eslint-plugin';

export default [
  {
    files: ['out/resolvers/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  { ...appsync.configs.recommended, files: ['out/resolvers/**/*.js'] },
  {
    files: ['out/resolvers/**/*.js'],
    rules: {
      'no-undef': 'error',
      'no-unused-vars': ['error', { args: 'none' }],
    },
  },
];
