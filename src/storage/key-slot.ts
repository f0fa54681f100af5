/**
 * The Redis Cluster slot of a key (CRC16/XMODEM of its hash tag, or of the whole key without
 * one, mod 16384), computed here so the key layout can pick shard tags that fall into chosen
 * slot ranges, and a batch of keys can be split by slot without asking the cluster.
 */
export const CLUSTER_SLOTS = 16_384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

/** Only the part between the first `{` and the next `}` counts, when it is not empty. */
export function keySlot(key: string): number {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key
  return crc16(Buffer.from(hashed, 'utf8')) % CLUSTER_SLOTS
}
