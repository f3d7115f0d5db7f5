// Vite plugin: serve folders of the repo (ORT's wasm files, the demo models, the fixtures) under fixed
// URLs in dev and preview, and copy them into the build. Never serves anything outside the named folders.
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin, Connect } from 'vite';

export interface StaticDir {
  /** URL prefix, with leading and trailing slash */
  url: string;
  /** folder, relative to the project root */
  dir: string;
  /** only paths (relative to dir, '/'-separated) matching this are served and copied */
  include?: RegExp;
}

const types: Record<string, string> = {
  '.wasm': 'application/wasm',
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
  '.md': 'text/markdown',
};

function listFiles(root: string, rel = ''): string[] {
  const abs = path.join(root, rel);
  if (!fs.existsSync(abs)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
    const r = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(root, r));
    else if (entry.isFile()) out.push(r);
  }
  return out.sort();
}

function resolveSafe(root: string, rel: string): string | null {
  const abs = path.resolve(root, rel);
  return abs.startsWith(path.resolve(root) + path.sep) ? abs : null;
}

export function staticDirs(dirs: StaticDir[]): Plugin {
  let root = process.cwd();
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = decodeURIComponent((req.url ?? '').split('?')[0]);
    for (const d of dirs) {
      if (!url.startsWith(d.url)) continue;
      const rel = url.slice(d.url.length);
      if (d.include && !d.include.test(rel)) continue;
      const abs = resolveSafe(path.join(root, d.dir), rel);
      if (!abs || !fs.existsSync(abs) || !fs.statSync(abs).isFile()) continue;
      res.setHeader('Content-Type', types[path.extname(abs)] ?? 'application/octet-stream');
      res.setHeader('Content-Length', String(fs.statSync(abs).size));
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      // NOTE: ORT's WASM thread pool starts its pthreads as module workers from /ort/*.mjs; in a
      // cross-origin isolated page a worker script without these headers is refused and the session
      // waits forever for its threads.
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      fs.createReadStream(abs).pipe(res);
      return;
    }
    next();
  };
  return {
    name: 'piggyback-static-dirs',
    configResolved(config) {
      root = config.root;
    },
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
    generateBundle() {
      for (const d of dirs) {
        const base = path.join(root, d.dir);
        for (const rel of listFiles(base)) {
          if (d.include && !d.include.test(rel)) continue;
          this.emitFile({
            type: 'asset',
            fileName: `${d.url.slice(1)}${rel}`,
            source: fs.readFileSync(path.join(base, rel)),
          });
        }
      }
    },
  };
}
