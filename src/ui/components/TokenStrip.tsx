// The prompt as a strip of tokens coloured by segment (prefix / query / postfix), each showing its text
// and id; a token is a button (click or Enter selects it). Edited tokens are marked. Token text is always
// rendered as React text, never as HTML. Test hooks: data-testid="token-strip" / "token", data-segment.
import type { KeyboardEvent } from 'react';
import type { PromptToken } from '../../lab/spec/results';
import { displayToken } from '../format';

interface Props {
  tokens: PromptToken[];
  /** index of the selected token, if any */
  selected?: number | null;
  /** positions picked for a patch (outlined) */
  picked?: ReadonlySet<number>;
  /** positions that carry an edit of the condition being edited (marked like edited tokens) */
  marked?: ReadonlySet<number>;
  onSelect?: (index: number) => void;
  compact?: boolean;
  label: string;
  testId?: string;
  /** the per-token test id; the main strip keeps "token", card previews use another */
  tokenTestId?: string;
}

export function TokenStrip({
  tokens,
  selected,
  picked,
  marked,
  onSelect,
  compact,
  label,
  testId = 'token-strip',
  tokenTestId = 'token',
}: Props) {
  if (tokens.length === 0) return <p className="muted small">No tokens.</p>;
  const rover = selected ?? 0;
  // NOTE: one tab stop for the whole strip (roving tabindex); arrows, Home and End move between tokens.
  const onKey = (e: KeyboardEvent<HTMLOListElement>) => {
    if (!onSelect) return;
    const buttons = Array.from(e.currentTarget.querySelectorAll<HTMLButtonElement>('button.token'));
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (at < 0) return;
    let to = at;
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') to = Math.min(buttons.length - 1, at + 1);
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') to = Math.max(0, at - 1);
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = buttons.length - 1;
    else return;
    e.preventDefault();
    buttons[to]?.focus();
  };
  return (
    <ol
      className={`token-strip${compact ? ' compact' : ''}`}
      data-testid={testId}
      aria-label={label}
      onKeyDown={onKey}
    >
      {tokens.map((t, i) => {
        const cls = [
          'token',
          `seg-${t.segment}`,
          t.edited || marked?.has(i) ? 'edited' : '',
          selected === i ? 'selected' : '',
          picked?.has(i) ? 'picked' : '',
        ]
          .filter(Boolean)
          .join(' ');
        const isEdited = !!t.edited || !!marked?.has(i);
        const title = `#${i} · ${t.segment} · id ${t.id}${isEdited ? ' · edited' : ''}\n${JSON.stringify(t.text)}`;
        const body = (
          <>
            <span className="tok-text">{displayToken(t.text)}</span>
            {!compact && <span className="tok-id">{t.id}</span>}
          </>
        );
        return (
          <li key={i} className="token-li">
            {onSelect ? (
              <button
                type="button"
                className={cls}
                data-testid={tokenTestId}
                data-segment={t.segment}
                data-index={i}
                data-token-id={t.id}
                data-edited={isEdited ? 'true' : undefined}
                aria-pressed={selected === i}
                tabIndex={i === rover ? 0 : -1}
                title={title}
                onClick={() => onSelect(i)}
              >
                {body}
              </button>
            ) : (
              <span
                className={cls}
                data-testid={tokenTestId}
                data-segment={t.segment}
                data-index={i}
                data-token-id={t.id}
                data-edited={isEdited ? 'true' : undefined}
                title={title}
              >
                {body}
              </span>
            )}
          </li>
        );
      })}
    </ol>
  );
}
