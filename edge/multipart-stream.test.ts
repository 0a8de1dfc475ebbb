import { describe, expect, it } from 'vitest';
import { boundaryOf, MultipartStream } from './multipart-stream.ts';

async function encoded(parts: Record<string, Uint8Array | string>) {
  const form = new FormData();
  for (const [k, v] of Object.entries(parts)) {
    if (typeof v === 'string') form.set(k, v);
    else form.set(k, new Blob([v as Uint8Array<ArrayBuffer>]), `${k}.bin`);
  }
  const req = new Request('http://x/', { method: 'POST', body: form });
  return { bytes: new Uint8Array(await req.arrayBuffer()), type: req.headers.get('content-type') };
}

function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= bytes.length) return c.close();
      c.enqueue(bytes.slice(o, o + size));
      o += size;
    },
  });
}

describe('MultipartStream', () => {
  it('streams each part in order, whatever the chunking, and skips unread parts', async () => {
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) % 251);
    const { bytes, type } = await encoded({ organ: 'liver', label: big, image: big.subarray(0, 999) });
    for (const size of [1, 7, 100, 4096, 1 << 20]) {
      const m = new MultipartStream(chunked(bytes, size), boundaryOf(type), 1 << 20);
      const organ = await m.next();
      expect(organ?.name).toBe('organ');
      expect(new TextDecoder().decode(await organ!.bytes(100))).toBe('liver');
      const label = await m.next();
      expect(label?.filename).toBe('label.bin');
      // Read only the start, then cancel: the rest of the part is skipped.
      const r = label!.body.getReader();
      await r.read();
      await r.cancel();
      const image = await m.next();
      expect([...(await image!.bytes(1 << 20))]).toEqual([...big.subarray(0, 999)]);
      expect(await m.next()).toBeNull();
    }
  });

  it('counts the body against the limit', async () => {
    const { bytes, type } = await encoded({ image: new Uint8Array(5000) });
    const m = new MultipartStream(chunked(bytes, 512), boundaryOf(type), 2000);
    const p = await m.next();
    await expect(p!.bytes(1 << 20)).rejects.toMatchObject({ code: 'too_large' });
  });
});
