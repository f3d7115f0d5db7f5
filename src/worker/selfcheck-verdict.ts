// The self-check page's verdict in one line: pass when every check that ran agrees with the reference
// (and the backends with each other) within the tolerance, fail otherwise; a backend the browser does
// not have is "not available", never a failure. Pure; must never import the engine or touch the DOM.
import type { SelfCheckResult } from './selfcheck';

/** Relative error above which the engine disagrees with the reference: a bug, not rounding. */
export const SELF_CHECK_TOLERANCE = 1e-4;

export interface SelfCheckVerdict {
  pass: boolean;
  /** one plain sentence for the page */
  text: string;
  /** "model requested dtype" of each check that failed */
  failed: string[];
  /** backends that could not start here */
  unavailable: string[];
}

export function selfCheckVerdict(r: SelfCheckResult): SelfCheckVerdict {
  const name = (m: string) => m.replace(/\/+$/, '').split('/').pop() ?? m;
  const failed: string[] = [];
  const unavailable = new Set<string>();
  let ran = 0;
  for (const c of r.checks) {
    if (c.used === null) {
      unavailable.add(String(c.requested));
      continue;
    }
    ran++;
    if (c.error || c.maxRelError === null || !(c.maxRelError < SELF_CHECK_TOLERANCE))
      failed.push(`${name(c.model)} ${c.requested} ${c.dtype}`);
  }
  const crossOk = r.crossBackend === null || r.crossBackend < SELF_CHECK_TOLERANCE;
  if (!crossOk) failed.push('the backends disagree with each other');
  const pass = ran > 0 && failed.length === 0;
  const na = unavailable.size ? ` (${[...unavailable].join(', ')} not available in this browser)` : '';
  const text = pass
    ? `PASS: all ${ran} checks agree with the reference within ${SELF_CHECK_TOLERANCE}${na}.`
    : ran === 0
      ? `FAIL: no backend could run${na}.`
      : `FAIL: ${failed.length} of ${ran} checks disagree with the reference — ${failed.join('; ')}${na}.`;
  return { pass, text, failed, unavailable: [...unavailable] };
}
