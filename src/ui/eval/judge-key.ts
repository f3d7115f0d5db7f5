// The API judge's key while the tab is open, in this module's memory only, so that "Judge these answers"
// above the cards can use the key typed in the Evaluation panel. EvalForm writes it; it must never go
// into a store, the spec, a link, a log or an export (sessionStorage only through EvalForm's "remember").
let key = '';

export const judgeKey = {
  get: (): string => key,
  set: (next: string): void => {
    key = next;
  },
};
