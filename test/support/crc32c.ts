/**
 * CRC-32C (Castagnoli), the checksum GCS reports for every object. The fake GCS server needs it
 * because the real client compares it with its own after every upload (and deletes the object and
 * throws when they differ) and against `x-goog-hash` after every full download.
 */

// Reflected form of the Castagnoli polynomial 0x1EDC6F41.
const POLYNOMIAL = 0x82f63b78;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** `previous` continues a checksum over data split into pieces: crc32c(b, crc32c(a)) = crc32c(a + b). */
export function crc32c(data: Uint8Array, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The form GCS uses in object metadata and `x-goog-hash`: the 4 bytes big-endian, base64. */
export function crc32cBase64(data: Uint8Array): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32c(data));
  return bytes.toString('base64');
}
