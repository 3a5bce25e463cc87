import { randomBytes } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cBase64 } from './crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 (iSCSI) vectors', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
  });

  it('continues over pieces', () => {
    const data = randomBytes(1000);
    expect(crc32c(data.subarray(300), crc32c(data.subarray(0, 300)))).toBe(crc32c(data));
  });

  it('encodes as GCS does: 4 bytes big-endian, base64', () => {
    expect(crc32cBase64(Buffer.from('123456789'))).toBe(
      Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'),
    );
  });

  it('agrees with the GCS client on random data', () => {
    for (const size of [0, 1, 7, 4096, 100_003]) {
      const data = randomBytes(size);
      const theirs = new CRC32C();
      theirs.update(data);
      expect(crc32cBase64(data)).toBe(theirs.toString());
    }
  });
});
