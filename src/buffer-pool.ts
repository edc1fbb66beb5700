/**
 * Node hands out small Buffers (under 4 KiB: Buffer.from(string), allocUnsafe) as slices of a
 * shared 8 KiB slab, and a slab lives as long as any slice of it. A connection keeps a few small
 * Buffers for its whole life (ssh2 keeps both identification strings, the exchange's shared
 * secret, the AES-GCM tag; a credential's key blob), each cut from a slab that sessions opened
 * at the same time share: at 300 idle sessions, 39 slabs were held by one kex secret each, and
 * the slabs came to 9.3 KiB per idle session (bench --profile, heap snapshot by retainer).
 * Without the pool each Buffer has its own backing store of its own size; allocation costs a
 * little more, which the per-packet path does not notice (it allocates 32 KiB packets anyway).
 */
export function unpoolSmallBuffers(): void {
  Buffer.poolSize = 0;
}
