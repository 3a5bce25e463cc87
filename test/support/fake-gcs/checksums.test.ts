import { randomBytes } from 'node:crypto';
import { CRC32C, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeGcsServer, startFakeGcsServer } from '../fake-gcs-server.js';

// The client compares the CRC32C the server answers after an upload with its own (`validation:
// 'crc32c'` makes a mismatch fail the upload); the known vectors tie both to the standard.

const BUCKET = 'checksums';

/** A CRC32C value in the form GCS reports it: 4 bytes big-endian, base64. */
function gcsForm(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes.toString('base64');
}

function libraryCrc32c(bytes: Buffer): string {
  const crc = new CRC32C();
  crc.update(bytes);
  return crc.toString();
}

let gcs: FakeGcsServer;
let storage: Storage;

beforeAll(async () => {
  gcs = await startFakeGcsServer({ buckets: [BUCKET] });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test-project' });
});

afterAll(async () => {
  await gcs.stop();
});

describe('fake GCS server checksums', () => {
  // The CRC-32C check value, then the RFC 3720 (iSCSI) vectors.
  it.each([
    ['"123456789"', Buffer.from('123456789'), 0xe3069283],
    ['no bytes', Buffer.alloc(0), 0],
    ['32 zero bytes', Buffer.alloc(32, 0x00), 0x8a9136aa],
    ['32 0xff bytes', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['bytes 0 to 31', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
    ['bytes 31 to 0', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
  ])('answers a multipart upload of %s with its CRC32C', async (label, bytes, value) => {
    const file = storage.bucket(BUCKET).file(`vectors/${label}`);
    await file.save(bytes, { resumable: false, validation: 'crc32c' });
    expect(file.metadata.crc32c).toBe(gcsForm(value));
    expect(gcs.objects.get(BUCKET, `vectors/${label}`)?.crc32c).toBe(gcsForm(value));
  });

  it('answers a resumable upload in chunks with the CRC32C the library computes', async () => {
    const bytes = randomBytes(2 * 256 * 1024 + 5);
    const file = storage.bucket(BUCKET).file('resumable/0.bin');
    await file.save(bytes, { resumable: true, chunkSize: 256 * 1024, validation: 'crc32c' });
    expect(file.metadata.crc32c).toBe(libraryCrc32c(bytes));
    expect(gcs.objects.get(BUCKET, 'resumable/0.bin')?.data.equals(bytes)).toBe(true);
  });
});
