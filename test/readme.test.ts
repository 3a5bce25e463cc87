import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EnvSchema } from '../src/config.js';

describe('README', () => {
  it('documents every environment variable the server reads, with its default', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    for (const [name, schema] of Object.entries(EnvSchema.properties)) {
      const row = readme.split('\n').find((line) => new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`).test(line));
      expect(row, `README has no row for ${name}`).toBeDefined();
      const fallback = (schema as { default?: unknown }).default;
      const shown = fallback === undefined ? '—' : fallback === '' ? '(empty)' : `\`${fallback}\``;
      expect(row?.split('|')[2].trim(), `default of ${name}`).toBe(shown);
    }
  });

  it('starts with the two commands', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const firstBlock = readme.slice(
      readme.indexOf('```bash'),
      readme.indexOf('```', readme.indexOf('```bash') + 3),
    );
    expect(firstBlock).toContain('npm install');
    expect(firstBlock).toContain('npm start');
    expect(firstBlock).toContain('npm test');
  });
});
