// Whether a CSS media query matches, kept in step with the window (useSyncExternalStore over matchMedia).
// Must only read layout facts; where matchMedia is missing (node tests) it reports false.
import { useSyncExternalStore } from 'react';

/** The width under which the lab is one column (styles.css `.lab-grid`): the side panels sit far below. */
export const ONE_COLUMN_QUERY = '(max-width: 1000px)';

export function useMediaQuery(query: string): boolean {
  return useSyncExternalStore(
    (onChange) => {
      if (typeof window === 'undefined' || !window.matchMedia) return () => {};
      const mq = window.matchMedia(query);
      mq.addEventListener('change', onChange);
      return () => mq.removeEventListener('change', onChange);
    },
    () => typeof window !== 'undefined' && !!window.matchMedia && window.matchMedia(query).matches,
    () => false,
  );
}
