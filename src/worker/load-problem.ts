// A load failure the models panel can act on (confirm an adapter's base, choose a smaller dtype, paste
// a token, pick a folder again): the error the worker throws, and the mapping from engine errors.
// Must never carry a token or a file's contents.
import { isHubError } from '../hub/hub-api';
import type { LoadProblem } from './protocol';

export class LoadProblemError extends Error {
  readonly problem: LoadProblem;
  constructor(message: string, problem: LoadProblem) {
    super(message);
    this.name = 'LoadProblemError';
    this.problem = problem;
  }
}

const AUTH_REASONS = ['gated', 'gated_no_access', 'bad_token', 'forbidden'] as const;
type AuthReason = (typeof AUTH_REASONS)[number];

/** The actionable part of an error, if any. */
export function problemOf(e: unknown): LoadProblem | undefined {
  if (e instanceof LoadProblemError) return e.problem;
  if (isHubError(e) && (AUTH_REASONS as readonly string[]).includes(e.reason))
    return { kind: 'auth', reason: e.reason as AuthReason };
  return undefined;
}
