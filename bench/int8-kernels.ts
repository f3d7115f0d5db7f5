// Micro-bench of the ORT kernels an int8 linear layer could use: one x·Wᵀ of the Qwen2.5-0.5B MLP shape
// (K 896 → N 4864) at M = 1 (decode) and M = 33 (prefill), fp32 MatMul against 8-bit candidates, on
// onnxruntime-web (WASM, in Node) and onnxruntime-node (CPU), one thread. Prints ms per run; never
// asserts. `npx tsx bench/int8-kernels.ts [--k 896] [--n 4864] [--reps 30]`

import { bytesSource, float32Source, GraphBuilder } from '../src/engine/graph/builder';
import { DataType } from '../src/engine/graph/proto';
import { createSession, type EngineSession } from '../src/engine/session';
import { loadavg } from 'node:os';

const MS = 'com.microsoft';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const K = arg('k', 896);
const N = arg('n', 4864);
const REPS = arg('reps', 10);
/** distinct weight matrices per graph, so the weights stream from memory as in a model, not from cache */
const G = arg('g', 8);

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

let W = rand(N * K, 1, 0.05); // [N, K]

interface Candidate {
  name: string;
  build(b: GraphBuilder, x: string): string;
  opsets?: { domain: string; version: number }[];
}

function transposed(): Float32Array {
  const t = new Float32Array(K * N);
  for (let r = 0; r < N; r++) for (let c = 0; c < K; c++) t[c * N + r] = W[r * K + c];
  return t;
}

/** per-output-row symmetric int8: codes [K, N] (transposed for MatMulInteger), scales [N] */
function int8PerRow(): { codesKN: Int8Array; codesNK: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(N);
  const codesKN = new Int8Array(K * N);
  const codesNK = new Int8Array(K * N);
  for (let r = 0; r < N; r++) {
    let m = 0;
    for (let c = 0; c < K; c++) m = Math.max(m, Math.abs(W[r * K + c]));
    const s = m / 127 || 1;
    scales[r] = s;
    for (let c = 0; c < K; c++) {
      const q = Math.max(-127, Math.min(127, Math.round(W[r * K + c] / s)));
      codesKN[c * N + r] = q;
      codesNK[r * K + c] = q;
    }
  }
  return { codesKN, codesNK, scales };
}

const withMs = [
  { domain: '', version: 17 },
  { domain: MS, version: 1 },
];

function nbits8(blockSize: number, accuracyLevel: number): Candidate {
  return {
    name: `MatMulNBits bits=8 block=${blockSize} acc=${accuracyLevel}`,
    opsets: withMs,
    build(b, x) {
      const blocks = Math.ceil(K / blockSize);
      const codes = new Uint8Array(N * blocks * blockSize);
      const scales = new Float32Array(N * blocks);
      for (let r = 0; r < N; r++) {
        for (let bl = 0; bl < blocks; bl++) {
          let m = 0;
          for (let c = bl * blockSize; c < Math.min(K, (bl + 1) * blockSize); c++)
            m = Math.max(m, Math.abs(W[r * K + c]));
          const s = m / 127 || 1;
          scales[r * blocks + bl] = s;
          for (let j = 0; j < blockSize; j++) {
            const c = bl * blockSize + j;
            const q = c < K ? Math.max(-128, Math.min(127, Math.round(W[r * K + c] / s))) : 0;
            codes[(r * blocks + bl) * blockSize + j] = q + 128;
          }
        }
      }
      const w = b.weight('w' + b.name('w'), bytesSource(DataType.UINT8, [N, blocks, blockSize], codes));
      const sc = b.weight('s' + b.name('s'), float32Source([N, blocks], scales));
      return b.node('MatMulNBits', [x, w, sc], {
        domain: MS,
        attrs: [
          { name: 'K', type: 'int', value: K },
          { name: 'N', type: 'int', value: N },
          { name: 'bits', type: 'int', value: 8 },
          { name: 'block_size', type: 'int', value: blockSize },
          { name: 'accuracy_level', type: 'int', value: accuracyLevel },
        ],
      })[0];
    },
  };
}

const candidates: Candidate[] = [
  {
    name: 'fp32 MatMul',
    build: (b, x) => b.matmul(x, b.weight('w' + b.name('w'), float32Source([K, N], transposed()))),
  },
  {
    name: 'DynamicQuantizeLinear+MatMulInteger+Cast+Mul',
    build(b, x) {
      const q = int8PerRow();
      const [xq, xs, xz] = b.node('DynamicQuantizeLinear', [x], { outputs: 3 });
      const w = b.weight(
        'w' + b.name('w'),
        bytesSource(DataType.INT8, [K, N], new Uint8Array(q.codesKN.buffer)),
      );
      const acc = b.node('MatMulInteger', [xq, w, xz], {})[0];
      const f = b.cast(acc, DataType.FLOAT);
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      return b.mul(b.mul(f, xs), s);
    },
  },
  {
    name: 'DynamicQuantizeMatMul (com.microsoft)',
    opsets: withMs,
    build(b, x) {
      const q = int8PerRow();
      const w = b.weight(
        'w' + b.name('w'),
        bytesSource(DataType.INT8, [K, N], new Uint8Array(q.codesKN.buffer)),
      );
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      return b.node('DynamicQuantizeMatMul', [x, w, s], { domain: MS })[0];
    },
  },
  {
    name: 'DQL + MatMulIntegerToFloat (com.microsoft)',
    opsets: withMs,
    build(b, x) {
      const q = int8PerRow();
      const [xq, xs, xz] = b.node('DynamicQuantizeLinear', [x], { outputs: 3 });
      const w = b.weight(
        'w' + b.name('w'),
        bytesSource(DataType.INT8, [K, N], new Uint8Array(q.codesKN.buffer)),
      );
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      return b.node('MatMulIntegerToFloat', [xq, w, xs, s, xz], { domain: MS })[0];
    },
  },
  {
    name: 'DynamicQuantizeMatMul uint8 B, zp 128',
    opsets: withMs,
    build(b, x) {
      const q = int8PerRow();
      const u = new Uint8Array(K * N);
      for (let i = 0; i < u.length; i++) u[i] = q.codesKN[i] + 128;
      const w = b.weight('w' + b.name('w'), bytesSource(DataType.UINT8, [K, N], u));
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      const z = b.weight('z' + b.name('z'), bytesSource(DataType.UINT8, [N], new Uint8Array(N).fill(128)));
      return b.node('DynamicQuantizeMatMul', [x, w, s, z], { domain: MS })[0];
    },
  },
  {
    name: 'DQL + MatMulIntegerToFloat uint8 B, zp 128',
    opsets: withMs,
    build(b, x) {
      const q = int8PerRow();
      const u = new Uint8Array(K * N);
      for (let i = 0; i < u.length; i++) u[i] = q.codesKN[i] + 128;
      const [xq, xs, xz] = b.node('DynamicQuantizeLinear', [x], { outputs: 3 });
      const w = b.weight('w' + b.name('w'), bytesSource(DataType.UINT8, [K, N], u));
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      const z = b.weight('z' + b.name('z'), bytesSource(DataType.UINT8, [N], new Uint8Array(N).fill(128)));
      return b.node('MatMulIntegerToFloat', [xq, w, xs, s, xz, z], { domain: MS })[0];
    },
  },
  {
    name: 'DequantizeLinear(int8, axis) + MatMul',
    build(b, x) {
      const q = int8PerRow();
      const w = b.weight(
        'w' + b.name('w'),
        bytesSource(DataType.INT8, [K, N], new Uint8Array(q.codesKN.buffer)),
      );
      const s = b.weight('s' + b.name('s'), float32Source([N], q.scales));
      const deq = b.op('DequantizeLinear', [w, s], [{ name: 'axis', type: 'int', value: 1 }]);
      return b.matmul(x, deq);
    },
  },
  nbits8(32, 0),
  nbits8(32, 4),
  nbits8(128, 0),
  nbits8(128, 4),
];

async function time(s: EngineSession, m: number): Promise<number> {
  const x = s.float32(rand(m * K, 7 + m), [m, K]);
  await s.run({ x }, ['y']);
  await s.run({ x }, ['y']);
  const t0 = performance.now();
  for (let i = 0; i < REPS; i++) await s.run({ x }, ['y']);
  return (performance.now() - t0) / REPS / G;
}

async function main(): Promise<void> {
  console.log(
    `# int8 kernel micro-bench: x[M,${K}]·W[${N},${K}]ᵀ, ms per matmul (${G} distinct matrices per run), ${REPS} reps, 1 thread, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${new Date().toISOString()}`,
  );
  const ref: Record<string, Float32Array> = {};
  const only = process.argv.includes('--only')
    ? new RegExp(process.argv[process.argv.indexOf('--only') + 1])
    : null;
  const rounds = arg('rounds', 1);
  const backends = process.argv.includes('--wasm-only')
    ? (['wasm'] as const)
    : (['wasm', 'node-cpu'] as const);
  for (let round = 0; round < rounds; round++)
    for (const backend of backends) {
      for (const c of candidates) {
        if (only && c.name !== 'fp32 MatMul' && !only.test(c.name)) continue;
        const b = new GraphBuilder();
        const x = b.input('x', DataType.FLOAT, ['m', K]);
        let y = '';
        for (let g = 0; g < G; g++) {
          W = rand(N * K, 1 + g, 0.05);
          const yg = c.build(b, x);
          y = g === 0 ? yg : b.add(y, yg);
        }
        b.node('Identity', [y], { names: ['y'] });
        b.output('y', DataType.FLOAT, ['m', N]);
        const built = b.build(c.opsets);
        let s: EngineSession;
        try {
          s = await createSession(built, backend, { intraOpNumThreads: 1 });
        } catch (e) {
          console.log(`${backend}\t${c.name}\tFAILED: ${String(e).slice(0, 160)}`);
          continue;
        }
        // error vs fp32 at M = 1 (so a candidate that runs but computes garbage shows it)
        const x1 = s.float32(rand(K, 99), [1, K]);
        const y1 = (await s.run({ x: x1 }, ['y'])).y.data as Float32Array;
        const key = backend;
        let err = '';
        if (c.name === 'fp32 MatMul') ref[key] = y1.slice();
        else if (ref[key]) {
          let se = 0;
          let nn = 0;
          for (let i = 0; i < N; i++) {
            se += (y1[i] - ref[key][i]) ** 2;
            nn += ref[key][i] ** 2;
          }
          err = `rel err ${Math.sqrt(se / nn).toExponential(2)}`;
        }
        const t1 = await time(s, 1);
        const t33 = await time(s, 33);
        console.log(`${backend}\t${c.name}\tM=1 ${t1.toFixed(3)} ms\tM=33 ${t33.toFixed(3)} ms\t${err}`);
        await s.release();
      }
    }
}

void main();
