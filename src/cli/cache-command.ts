// `piggyback cache [list | clear [owner/name]]`: what the download cache folder holds, and clearing
// it (all of it, or one repo). Must never touch anything outside the cache folder.
import { defaultDownloadCacheDir, folderDownloadCache } from '../hub/download-cache-node';
import { isRepoId } from '../hub/hub-api';
import { formatBytes } from '../common/format';
import { clearGraphCache, defaultGraphCacheDir, FileGraphStore } from './graph-cache';

export async function cacheCommand(
  args: string[],
  _flags: ReadonlyMap<string, string | true>,
  env: Record<string, string | undefined> = process.env,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const dir = defaultDownloadCacheDir(env);
  const cache = folderDownloadCache(dir);
  const [sub = 'list', repo] = args;
  if (sub === 'list') {
    const entries = await cache.list();
    const total = entries.reduce((a, e) => a + e.size, 0);
    const graphDir = defaultGraphCacheDir(env);
    const built = await new FileGraphStore(graphDir).entries();
    const graphBytes = built.reduce((a, e) => a + e.bytes, 0);
    const graphs = {
      location: graphDir,
      entries: built.length,
      bytes: graphBytes,
      size: formatBytes(graphBytes),
      // NOTE: most recently used first, as a reader looks for what the next run opens
      list: built.reverse().map((e) => ({
        entry: e.dir,
        bytes: e.bytes,
        lastUsed: new Date(e.usedMs).toISOString(),
      })),
    };
    out(
      JSON.stringify(
        { location: dir, files: entries.length, bytes: total, size: formatBytes(total), entries, graphs },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  if (sub === 'clear') {
    if (repo !== undefined && !isRepoId(repo)) throw new Error(`"${repo}" is not owner/name`);
    let freed = await cache.clear(repo ? { repo } : undefined);
    // NOTE: the graph files are the whole cache's too (built from any source, not one repo's)
    if (!repo) freed += await clearGraphCache(defaultGraphCacheDir(env));
    out(`cleared ${repo ?? 'the whole cache'} in ${dir}: ${formatBytes(freed)} freed\n`);
    return 0;
  }
  throw new Error(`unknown cache command "${sub}" (use: piggyback cache list | clear [owner/name])`);
}
