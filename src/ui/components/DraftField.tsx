// A text input or textarea that edits a draft locally and commits it to the spec on blur, on Enter
// (Ctrl/⌘+Enter in a textarea) or after a pause in typing — so each keystroke is not a new spec, a new
// undo step and a new run. Must never commit a value equal to the current one.
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';

interface Props {
  value: string;
  onCommit: (v: string) => void;
  multiline?: boolean;
  rows?: number;
  id?: string;
  placeholder?: string;
  ariaLabel?: string;
  disabled?: boolean;
  className?: string;
  /** commit after this many ms without typing; 0 = only on blur/Enter */
  idleMs?: number;
  maxLength?: number;
  testId?: string;
  autoFocus?: boolean;
  /** Escape pressed: the draft is dropped */
  onCancel?: () => void;
}

export function DraftField({
  value,
  onCommit,
  multiline,
  rows = 2,
  id,
  placeholder,
  ariaLabel,
  disabled,
  className,
  idleMs = 900,
  maxLength,
  testId,
  autoFocus,
  onCancel,
}: Props) {
  const [draft, setDraft] = useState(value);
  const [seen, setSeen] = useState(value);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  if (value !== seen) {
    // NOTE: React's "adjust state when a prop changes" pattern: an outside change (undo, a link) wins.
    setSeen(value);
    setDraft(value);
  }
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const commit = (v: string) => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = null;
    if (v !== value) onCommit(v);
    else onCancel?.();
  };
  const onChange = (v: string) => {
    setDraft(v);
    if (timer.current) clearTimeout(timer.current);
    if (idleMs > 0) timer.current = setTimeout(() => commit(v), idleMs);
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement | HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (!multiline || e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      commit(draft);
    } else if (e.key === 'Escape') {
      setDraft(value);
      onCancel?.();
    }
  };
  const common = {
    id,
    value: draft,
    placeholder,
    disabled,
    maxLength,
    className,
    'aria-label': ariaLabel,
    'data-testid': testId,
    autoFocus,
    onKeyDown: onKey,
    onBlur: () => commit(draft),
  };
  return multiline ? (
    <textarea {...common} rows={rows} onChange={(e) => onChange(e.target.value)} />
  ) : (
    <input {...common} type="text" onChange={(e) => onChange(e.target.value)} />
  );
}
