import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError, type EngineErrorCode } from './errors';
import { checkedReader, openSafetensors, writeSafetensors } from './safetensors';
import { isTextFile, memorySource, textFileLimit, type FileSource } from './files';
import { urlSource } from '../hub/url-files';
import { folderSource } from '../hub/folder-files-node';
import { blobFolderSource } from '../hub/browser-files';

async function expectCode(p: Promise<unknown>, code: EngineErrorCode): Promise<EngineError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineError);
    expect((e as EngineError).code).toBe(code);
    return e as EngineError;
  }
  throw new Error(`expected EngineError ${code}`);
}

const st = writeSafetensors(
  new Map([
    ['a', { dtype: 'F32' as const, shape: [3], data: Float32Array.of(1, 2, 3) }],
    ['b', { dtype: 'F16' as const, shape: [2], data: Float32Array.of(-1, 0.5) }],
  ]),
);
// NOTE: valid JSON one byte over the limit for JSON files other than tokenizer.json (8 MiB).
const BIG = `[${' '.repeat(8 * 1024 * 1024 - 1)}]`;
const files: Record<string, Uint8Array | string> = {
  'config.json': '{"x": 1}',
  'broken.json': '{"x": ',
  'big.json': BIG,
  'sub/w.safetensors': st,
};

/** The behaviour every FileSource shares. */
async function common(src: FileSource): Promise<void> {
  expect(await src.has('config.json')).toBe(true);
  expect(await src.has('nope.json')).toBe(false);
  expect(await src.readText('config.json')).toBe('{"x": 1}');
  expect(await src.readJson('config.json')).toEqual({ x: 1 });
  const bad = await expectCode(src.readJson('broken.json'), 'bad_json');
  expect(String(bad.details.file)).toContain('broken.json');
  const big = await expectCode(src.readJson('big.json'), 'file_too_large');
  expect(big.message).toMatch(/big\.json is (8\.0 MiB, )?over the 8\.0 MiB limit for a JSON or text file/);
  expect(big.details).toMatchObject({ file: 'big.json', limit: 8 * 1024 * 1024 });
  await expectCode(src.readText('big.json'), 'file_too_large');
  const missing = await expectCode(src.readText('nope.json'), 'missing_file');
  expect(missing.details.file).toBe('nope.json');
  await expectCode(src.openRandomAccess('nope.safetensors'), 'missing_file');
  const r = await src.openRandomAccess('sub/w.safetensors');
  expect(r.size).toBe(st.length);
  expect([...(await r.read(3, 4))]).toEqual([...st.subarray(3, 7)]);
  await expectCode(r.read(st.length - 1, 2), 'truncated_file');
  const f = await openSafetensors(r);
  expect([...(await f.read('b')).data]).toEqual([-1, 0.5]);
}

describe('text file limits', () => {
  it('64 MiB for tokenizer.json (a large vocabulary), 8 MiB for every other JSON or text file', () => {
    expect(textFileLimit('tokenizer.json')).toBe(64 * 1024 * 1024);
    expect(textFileLimit('sub/tokenizer.json')).toBe(64 * 1024 * 1024);
    expect(textFileLimit('config.json')).toBe(8 * 1024 * 1024);
    expect(textFileLimit('chat_template.jinja')).toBe(8 * 1024 * 1024);
    expect(isTextFile('model.safetensors.index.json')).toBe(true);
    expect(isTextFile('model.safetensors')).toBe(false);
  });
});

describe('memorySource', () => {
  it('serves strings and bytes', async () => {
    await common(memorySource(files));
    const m = memorySource(new Map([['x.bin', Uint8Array.of(1, 2)]]), 'demo');
    expect(m.id).toBe('demo');
    expect([...(await m.readBytes('x.bin'))]).toEqual([1, 2]);
  });
});

interface Served {
  fetch: typeof fetch;
  calls: { url: string; method: string; range: string | null }[];
}

/** A fake static server over `files`; honours Range unless told not to. */
function server(opts: { ranges: boolean }): Served {
  const calls: Served['calls'] = [];
  const enc = new TextEncoder();
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const headers = new Headers(init?.headers);
    const method = init?.method ?? 'GET';
    calls.push({ url, method, range: headers.get('Range') });
    const path = decodeURIComponent(url.replace('https://hub.test/m/resolve/main/', ''));
    const v = files[path];
    if (v === undefined) return new Response('not found', { status: 404 });
    const body = typeof v === 'string' ? enc.encode(v) : v;
    if (method === 'HEAD')
      return new Response(null, { status: 200, headers: { 'Content-Length': String(body.length) } });
    const range = headers.get('Range');
    const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
    if (m && opts.ranges) {
      const start = Number(m[1]);
      const end = Math.min(Number(m[2]), body.length - 1);
      return new Response(body.slice(start, end + 1), {
        status: 206,
        headers: { 'Content-Range': `bytes ${start}-${end}/${body.length}` },
      });
    }
    return new Response(body.slice(), { status: 200 });
  };
  return { fetch: fetchImpl as typeof fetch, calls };
}

describe('urlSource', () => {
  it('reads with range requests', async () => {
    const s = server({ ranges: true });
    const src = urlSource('https://hub.test/m/resolve/main/', {
      fetch: s.fetch,
      headers: { Authorization: 'Bearer t' },
    });
    expect(src.id).toBe('https://hub.test/m/resolve/main');
    await common(src);
    const ranged = s.calls.filter((c) => c.url.endsWith('w.safetensors') && c.method === 'GET');
    expect(ranged.length).toBeGreaterThan(0);
    expect(ranged.every((c) => c.range !== null)).toBe(true);
  });

  it('tolerates a server that ignores Range', async () => {
    const s = server({ ranges: false });
    await common(urlSource('https://hub.test/m/resolve/main', { fetch: s.fetch }));
  });

  it('reports HTTP failures', async () => {
    const fail = (async () => new Response('', { status: 500 })) as unknown as typeof fetch;
    const src = urlSource('https://hub.test/x', { fetch: fail });
    await expectCode(src.readText('config.json'), 'fetch_failed');
    await expectCode(src.has('config.json'), 'fetch_failed');
    const offline = (async () => {
      throw new TypeError('network down');
    }) as unknown as typeof fetch;
    await expectCode(urlSource('https://hub.test/x', { fetch: offline }).readBytes('a'), 'fetch_failed');
  });
});

describe('blobFolderSource', () => {
  it('reads picked files like a folder', async () => {
    await common(
      blobFolderSource(
        Object.entries(files).map(([k, v]) => ({ path: `m/${k}`, blob: new Blob([v as BlobPart]) })),
      ),
    );
  });
});

describe('folderSource', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads a folder on disk and never outside it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pb-source-'));
    await mkdir(join(dir, 'sub'));
    for (const [k, v] of Object.entries(files)) await writeFile(join(dir, k), v);
    const src = folderSource(dir);
    await common(src);
    expect(await src.has('sub')).toBe(false); // a folder is not a file
    await expectCode(src.readText('../etc/passwd'), 'missing_file');
    await expectCode(src.readText('/etc/passwd'), 'missing_file');
  });
});

describe('checkedReader (the one bounds check every reader uses)', () => {
  it('refuses reads outside the file before fetching, skips empty reads, and refuses short answers', async () => {
    const asked: [number, number][] = [];
    const r = checkedReader(10, 'w.safetensors', (offset, length) => {
      asked.push([offset, length]);
      return new Uint8Array(offset === 8 ? 1 : length);
    });
    expect((await r.read(2, 3)).byteLength).toBe(3);
    expect((await r.read(10, 0)).byteLength).toBe(0);
    for (const [o, l] of [
      [-1, 2],
      [9, 2],
      [0, 11],
      [1.5, 2],
      [0, -1],
    ])
      expect((await expectCode(r.read(o, l), 'truncated_file')).message).toMatch(
        /^w\.safetensors: read of .* runs past the end \(10 bytes\)$/,
      );
    const short = await expectCode(r.read(8, 2), 'truncated_file');
    expect(short.message).toMatch(/w\.safetensors: asked for 2 bytes at 8, got 1/);
    expect(asked).toEqual([
      [2, 3],
      [8, 2],
    ]);
  });
});
