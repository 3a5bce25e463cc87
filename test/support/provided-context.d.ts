// Values the global setup hands to test files through `inject()`.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A server URL to create databases through (its own database is the maintenance one). */
    databaseUrl: string;
    /** The migrated database every test database is cloned from. */
    templateDatabase: string;
  }
}
