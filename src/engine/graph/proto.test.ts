// The hand-written ONNX protobuf writer: wire-format primitives byte for byte, and whole models that
// both ORT runtimes load, with symbolic dims, attributes, raw and external initializers.

import { describe, expect, it } from 'vitest';
import { createSession, configureOrt } from '../session';
import { GraphBuilder } from './builder';
import { DataType, encodeModel, ProtoWriter } from './proto';

configureOrt({ numThreads: 1 });

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('ProtoWriter', () => {
  it('writes varints, including 64-bit two’s complement negatives', () => {
    expect(hex(new ProtoWriter().varint(0).finish())).toBe('00');
    expect(hex(new ProtoWriter().varint(150).finish())).toBe('9601');
    expect(hex(new ProtoWriter().varint(2 ** 40).finish())).toBe('808080808020');
    expect(hex(new ProtoWriter().varint(-1).finish())).toBe('ffffffffffffffffff01');
    expect(() => new ProtoWriter().varint(1.5)).toThrow(RangeError);
  });

  it('writes tags, strings, fixed32 floats and packed repeated fields', () => {
    expect(hex(new ProtoWriter().int(1, 8).finish())).toBe('0808');
    expect(hex(new ProtoWriter().string(2, 'ab').finish())).toBe('12026162');
    expect(hex(new ProtoWriter().float(2, 1).finish())).toBe('150000803f');
    expect(hex(new ProtoWriter().packedInts(8, [1, 300]).finish())).toBe('420301ac02');
  });

  it('encodes a ModelProto with ir_version, opset and graph fields', () => {
    const bytes = encodeModel({
      opsets: [{ domain: '', version: 17 }],
      graph: { name: 'g', nodes: [], initializers: [], inputs: [], outputs: [] },
    });
    // ir_version 8, producer, graph { name "g" }, opset_import { version 17 }
    expect(hex(bytes)).toBe(
      '0808' + '120d' + hex(new TextEncoder().encode('piggyback-lab')) + '3a03' + '120167' + '42021011',
    );
  });
});

for (const backend of ['wasm', 'node-cpu'] as const) {
  describe(`models from the writer on ${backend}`, () => {
    it('runs a graph with symbolic dims, attributes, raw and external initializers', async () => {
      const b = new GraphBuilder({ externalThreshold: 16 });
      const x = b.input('x', DataType.FLOAT, ['batch', 4]);
      const w = b.weight('w', {
        dataType: DataType.FLOAT,
        dims: [4, 3],
        byteLength: 48,
        write: (dst) =>
          new Float32Array(dst.buffer, dst.byteOffset, 12).set([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]),
      });
      const bias = b.constF32([0.5, -0.5, 2]);
      const y = b.add(b.matmul(x, w), bias);
      b.softmax(y, 1, 'p');
      b.transpose(y, [1, 0], 'yt');
      b.output('p', DataType.FLOAT, ['batch', 3]);
      b.output('yt', DataType.FLOAT, [3, 'batch']);
      const built = b.build();
      expect(built.externalData).toHaveLength(1);
      expect(built.externalData[0].data.byteLength).toBe(48);

      const s = await createSession(built, backend);
      const out = await s.run({ x: s.float32(Float32Array.from([1, 2, 3, 4, 0, 0, 0, 0]), [2, 4]) }, [
        'yt',
        'p',
      ]);
      expect(out.yt.dims).toEqual([3, 2]);
      expect(Array.from(out.yt.data as Float32Array)).toEqual([5.5, 0.5, 5.5, -0.5, 9, 2]);
      const p = out.p.data as Float32Array;
      expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 6);
      await s.release();
    });
  });
}
