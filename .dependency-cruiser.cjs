// The floors of src/ (ARCHITECTURE.md): a folder imports only from the floors below it, and no
// module imports itself back through others. `npm run lint` runs this check.

/** A folder of src/ may import from itself and from these (npm packages are always allowed). */
const floors = {
  domain: [],
  lib: [],
  'postgres-cluster': [],
  db: ['domain', 'lib', 'postgres-cluster'],
  storage: ['domain', 'lib', 'db'],
  lifecycle: ['domain', 'lib', 'db'],
  http: ['domain', 'lib', 'db'],
  auth: ['domain', 'lib', 'db', 'http'],
  jobs: ['domain', 'lib', 'db', 'storage', 'lifecycle', 'http'],
  workers: ['domain', 'lib', 'db', 'storage', 'lifecycle', 'http', 'jobs'],
  plugins: ['domain', 'lib', 'db', 'storage', 'lifecycle', 'http', 'auth', 'jobs', 'workers'],
};

// Top-level files: config.ts and logger.ts are leaves every floor may read; app.ts composes the
// folders; server.ts and cli.ts are the processes.
const LEAVES = '^src/(config|logger)[.]ts$';

const folderRules = Object.entries(floors).map(([folder, allowed]) => ({
  name: `floor-${folder}`,
  comment: `src/${folder}/ may import only from ${allowed.length ? allowed.map((f) => `src/${f}/`).join(', ') : 'itself'}${folder === 'domain' || folder === 'lib' || folder === 'postgres-cluster' ? '' : ' and config.ts/logger.ts'}`,
  severity: 'error',
  from: { path: `^src/${folder}/` },
  to: {
    path: '^src/',
    pathNot: [
      `^src/${folder}/`,
      ...allowed.map((f) => `^src/${f}/`),
      ...(['domain', 'lib', 'postgres-cluster'].includes(folder) ? [] : [LEAVES]),
    ],
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module may import itself back, directly or through others (type-only imports included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...folderRules,
    {
      name: 'leaves-import-nothing',
      comment: 'config.ts and logger.ts are read by every floor: they import nothing of the project.',
      severity: 'error',
      from: { path: LEAVES },
      to: { path: '^src/' },
    },
    {
      name: 'only-processes-import-the-app',
      comment: 'app.ts is composed by server.ts and cli.ts (and tests), never by the folders.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(server|cli)[.]ts$' },
      to: { path: '^src/(app|server|cli)[.]ts$' },
    },
    {
      name: 'migrations-are-frozen',
      comment: 'Migrations are history: they never import application code.',
      severity: 'error',
      from: { path: '^migrations/' },
      to: { path: '^(src|test|bench|sdk)/' },
    },
    {
      name: 'sdk-stands-alone',
      comment: 'The SDK is its own package without dependencies on the server.',
      severity: 'error',
      from: { path: '^sdk/src/' },
      to: { path: '^(src|test|bench|migrations|examples)/' },
    },
    {
      name: 'src-never-imports-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|examples)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
