// Editor for one selected prompt token: replace it (by an embedding neighbour or typed text), insert a
// token before it, or delete it — as an edit of the target condition's perturbation in the spec. Shows
// the edits already on that token. Must never edit the base prompt itself (edits belong to a condition)
// and never render token text as HTML.
import { useEffect, useState } from 'react';
import { errorMessage } from '../../common/errors';
import type { Condition, TokenEdit } from '../../lab/spec/experiment';
import type { PromptView } from '../../lab/spec/results';
import type { TokenNeighbour } from '../../worker/protocol';
import { displayToken } from '../format';
import { segmentIndex } from '../preview';
import { useSession } from '../session-context';
import { addTokenEdit, editsAt, removeTokenEdit } from '../spec-edit';
import { useLab } from '../store';

interface Props {
  prompt: PromptView;
  index: number;
  target: Condition;
}

type Neighbours =
  { status: 'loading' } | { status: 'ok'; list: TokenNeighbour[] } | { status: 'error'; message: string };

export function TokenEditor({ prompt, index, target }: Props) {
  const setSpec = useLab((s) => s.setSpec);
  const setUi = useLab((s) => s.setUi);
  const session = useSession();
  const token = prompt.tokens[index];
  const [replaceText, setReplaceText] = useState('');
  const [insertText, setInsertText] = useState('');
  const [neigh, setNeigh] = useState<{ tokenId: number; value: Neighbours } | null>(null);
  const { segment, index: segIndex } = segmentIndex(prompt, index);
  const existing = editsAt(target, segment, segIndex);
  const edits = target.perturbation?.kind === 'edits' ? target.perturbation.edits : [];
  const tokenId = token?.id;

  useEffect(() => {
    if (!session || tokenId === undefined) return;
    let live = true;
    session
      .neighbours(tokenId, 8)
      .then((list) => live && setNeigh({ tokenId, value: { status: 'ok', list } }))
      .catch(
        (e: unknown) =>
          live &&
          setNeigh({
            tokenId,
            value: { status: 'error', message: errorMessage(e) },
          }),
      );
    return () => {
      live = false;
    };
  }, [session, tokenId]);

  if (!token) return null;
  const neighbours: Neighbours = neigh && neigh.tokenId === token.id ? neigh.value : { status: 'loading' };
  const apply = (edit: TokenEdit) => setSpec((s) => addTokenEdit(s, target.id, edit));
  const replaceWith = (ref: { id: number } | { text: string }) =>
    apply({ op: 'replace', segment, index: segIndex, token: ref });
  const randomNote = target.perturbation?.kind === 'random';

  return (
    <div className="token-editor" role="group" aria-label={`edit token ${index}`} data-testid="token-editor">
      <div className="row wrap">
        <strong>
          Token #{index} <code className={`chip seg-${token.segment}`}>{displayToken(token.text)}</code>
        </strong>
        <span className="muted small">
          {token.segment} [{segIndex}] · id {token.id}
        </span>
        <span className="spacer" />
        <button
          type="button"
          className="btn small"
          onClick={() => setUi({ selectedToken: null })}
          aria-label="close token editor"
        >
          Close
        </button>
      </div>
      <p className="muted small">
        Edits go to <b>{target.label}</b>
        {randomNote && ' (its random perturbation gives way to hand edits)'}.
      </p>
      <div className="editor-grid">
        <div>
          <div className="label small">Replace with a near neighbour</div>
          {neighbours.status === 'loading' && <span className="muted small">finding neighbours…</span>}
          {neighbours.status === 'error' && (
            <span className="muted small">
              Neighbours unavailable ({neighbours.message}); type a replacement instead.
            </span>
          )}
          {neighbours.status === 'ok' && (
            <div className="chips">
              {neighbours.list.map((n) => (
                <button
                  type="button"
                  key={n.id}
                  className="btn chip-btn"
                  onClick={() => replaceWith({ id: n.id })}
                  title={`id ${n.id} · dot ${n.score.toFixed(2)}`}
                >
                  {displayToken(n.text)}
                </button>
              ))}
            </div>
          )}
        </div>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (replaceText) replaceWith({ text: replaceText });
            setReplaceText('');
          }}
        >
          <label className="field inline grow">
            <span>Replace by text</span>
            <input
              value={replaceText}
              onChange={(e) => setReplaceText(e.target.value)}
              maxLength={256}
              data-testid="replace-text"
            />
          </label>
          <button type="submit" className="btn" disabled={!replaceText}>
            Replace
          </button>
        </form>
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (insertText) apply({ op: 'insert', segment, index: segIndex, token: { text: insertText } });
            setInsertText('');
          }}
        >
          <label className="field inline grow">
            <span>Insert before</span>
            <input
              value={insertText}
              onChange={(e) => setInsertText(e.target.value)}
              maxLength={256}
              data-testid="insert-text"
            />
          </label>
          <button type="submit" className="btn" disabled={!insertText}>
            Insert
          </button>
        </form>
        <div className="row">
          <button
            type="button"
            className="btn danger"
            onClick={() => apply({ op: 'delete', segment, index: segIndex })}
          >
            Delete this token
          </button>
        </div>
      </div>
      {existing.length > 0 && (
        <ul className="plain edits-here small">
          {existing.map((i) => (
            <li key={i}>
              {describeEdit(edits[i])}{' '}
              <button
                type="button"
                className="btn small"
                onClick={() => setSpec((s) => removeTokenEdit(s, target.id, i))}
              >
                Undo
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function describeEdit(e: TokenEdit): string {
  const where = `${e.segment}[${e.index}]`;
  if (e.op === 'delete') return `delete ${where}`;
  const tok = 'id' in e.token ? `id ${e.token.id}` : JSON.stringify(e.token.text);
  return e.op === 'replace' ? `replace ${where} → ${tok}` : `insert ${tok} before ${where}`;
}
