// Dot products of a few query rows against every row of a large matrix (an input embedding), on an ORT
// session of its own: one MatMul (E · qᵀ: the big matrix is the streamed left operand, so nothing of it
// is packed or transposed; q · Eᵀ as a Gemm packs all of E first: 3–7× the CPU time on a 151,936 × 896 matrix, node and WASM) and the rows' squared norms, fed the matrix in chunks of rows so
// that no second whole copy of it is made (WASM copies inputs into its heap). fp32 results: callers that
// need exact answers rescore (lab/interventions/perturb.ts nearestNeighboursFromScores does).
// It knows nothing of tokens or neighbours and keeps no tensor beyond a call.

import { DataType } from './graph/proto';
import { GraphBuilder } from './graph/builder';
import { createSession, type BackendRequest, type EngineSession } from './session';

const Q = 'queries';
const E = 'rows';
const SCORES = 'scores';
const SQ = 'sq_norms';

/** rows per chunk: 16 Mi values (64 MB fp32) at most, so a chunk is a modest transient in a WASM heap */
const CHUNK_VALUES = 1 << 24;

export interface DotScores {
  /** [queries, rows] row-major, fp32 */
  scores: Float32Array;
  /** [rows]: Σ row², fp32 */
  sqNorms: Float32Array;
}

export class DotProductSearch {
  private constructor(private readonly session: EngineSession) {}

  /** Opens the two-op graph; 'wasm' or 'node-cpu' (a plain CPU search; never WebGPU's binding limits). */
  static async create(backend: BackendRequest = 'wasm'): Promise<DotProductSearch> {
    const g = new GraphBuilder();
    // queries arrive transposed, [hidden, count]; scores leave as [rows, count]
    g.input(Q, DataType.FLOAT, ['h', 'q']);
    g.input(E, DataType.FLOAT, ['n', 'h']);
    g.output(g.matmul(E, Q, SCORES), DataType.FLOAT, ['n', 'q']);
    const sq = g.op(
      'ReduceSumSquare',
      [E],
      [
        { name: 'axes', type: 'ints', value: [1] },
        { name: 'keepdims', type: 'int', value: 0 },
      ],
      SQ,
    );
    g.output(sq, DataType.FLOAT, ['n']);
    return new DotProductSearch(await createSession(g.build(), backend));
  }

  get backend() {
    return this.session.backend;
  }

  /**
   * `queries` [count, hidden] against `matrix` [rows, hidden]: every dot product and every row's
   * squared norm. `chunkRows` defaults to what keeps one fed chunk ≤ 64 MB.
   */
  async scores(
    queries: Float32Array,
    count: number,
    matrix: Float32Array,
    rows: number,
    hidden: number,
    chunkRows = Math.max(1, Math.floor(CHUNK_VALUES / hidden)),
  ): Promise<DotScores> {
    if (queries.length !== count * hidden)
      throw new RangeError(`queries must hold ${count}×${hidden} values`);
    if (matrix.length !== rows * hidden) throw new RangeError(`matrix must hold ${rows}×${hidden} values`);
    const s = this.session;
    const scores = new Float32Array(count * rows);
    const sqNorms = new Float32Array(rows);
    const qT = new Float32Array(hidden * count);
    for (let i = 0; i < count; i++)
      for (let h = 0; h < hidden; h++) qT[h * count + i] = queries[i * hidden + h];
    const q = s.float32(qT, [hidden, count]);
    try {
      for (let r0 = 0; r0 < rows; r0 += chunkRows) {
        const n = Math.min(chunkRows, rows - r0);
        // NOTE: a view, not a copy (both runtimes read a view's own bytes; the chunked test checks it)
        const e = s.float32(matrix.subarray(r0 * hidden, (r0 + n) * hidden), [n, hidden]);
        let out: Awaited<ReturnType<EngineSession['run']>>;
        try {
          out = await s.run({ [Q]: q, [E]: e }, [SCORES, SQ]);
        } finally {
          e.dispose();
        }
        const sc = (await out[SCORES].getData()) as Float32Array;
        const sq = (await out[SQ].getData()) as Float32Array;
        for (let v = 0; v < n; v++)
          for (let i = 0; i < count; i++) scores[i * rows + r0 + v] = sc[v * count + i];
        sqNorms.set(sq, r0);
        out[SCORES].dispose();
        out[SQ].dispose();
      }
    } finally {
      q.dispose();
    }
    return { scores, sqNorms };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
