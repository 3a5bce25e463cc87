import { randomBytes } from 'node:crypto';

// nanoid's URL-safe alphabet: 64 symbols, so `byte & 63` picks each one with equal chance.
const ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict';

export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = '';
  for (let i = 0; i < length; i++) id += ALPHABET[bytes[i] & 63];
  return id;
}

export const JOB_ID_PATTERN = '^job_[A-Za-z0-9_-]{21}$';
export const newJobId = () => `job_${randomId(21)}`;
export const newOrganizationId = () => `org_${randomId(16)}`;
export const newApiKeyId = () => `key_${randomId(16)}`;
