// Reads a share link's spec out of the page's URL fragment at startup (and on hashchange): nothing,
// a spec to restore and run, or an error message to show over the default demo. Pure over the hash
// string; it must never throw and never act on the spec itself.
import type { ExperimentSpec } from '../lab/spec/experiment';
import { decodeLink, LINK_PARAM } from '../lab/spec/link';

export type LinkBoot =
  | { kind: 'none' }
  | { kind: 'spec'; spec: ExperimentSpec }
  | { kind: 'error'; message: string; details: string[] };

export function specFromHash(hash: string): LinkBoot {
  const frag = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!frag.split('&').some((p) => p === LINK_PARAM || p.startsWith(`${LINK_PARAM}=`)))
    return { kind: 'none' };
  const r = decodeLink(`#${frag}`);
  if (r.ok) return { kind: 'spec', spec: r.spec };
  return {
    kind: 'error',
    message: `This link could not be opened (${r.error.message}), so the default demo is shown instead.`,
    details: r.error.issues ?? [],
  };
}
