// The models panel's local mode: a base folder and either a LoRA adapter folder or a full finetune
// folder, each picked with a directory picker or dropped on the page. The files go to the worker
// (held in its memory for this page); the spec keeps only `{kind: 'local', path: <folder name>}`, so
// a share link names the folders but the recipient must pick them too. Never uploads anything.
import { useId, useRef, useState, type DragEvent } from 'react';
import { errorMessage } from '../../common/errors';
import type { ExperimentSpec, ModelEntry } from '../../lab/spec/experiment';
import { formatBytes } from '../../common/format';
import { folderFromDrop, folderFromInput, folderKind, type PickedFolder } from '../local-files';
import { useSession } from '../session-context';
import { useLab } from '../store';

type Slot = 'base' | 'adapter' | 'finetuned';

const LABEL: Record<Slot, string> = {
  base: 'Base model folder',
  adapter: 'LoRA adapter folder',
  finetuned: 'Full finetune folder',
};

/** Folder names already lent to the worker, with a signature, so two different folders never share one. */
const lent = new Map<string, string>();

function uniqueName(f: PickedFolder): string {
  // NOTE: paths, sizes and modification times: two folders alike in all of these hold the same model.
  const sig = f.files
    .map((x) => `${x.path}:${x.file.size}:${x.file instanceof File ? x.file.lastModified : 0}`)
    .join('|');
  let name = f.name;
  for (let i = 2; lent.has(name) && lent.get(name) !== sig; i++) name = `${f.name} (${i})`;
  lent.set(name, sig);
  return name;
}

interface Picked {
  name: string;
  files: number;
  bytes: number;
  kind: ReturnType<typeof folderKind>;
}

function FolderSlot({
  slot,
  picked,
  onPicked,
}: {
  slot: Slot;
  picked: Picked | null;
  onPicked: (f: PickedFolder) => void;
}) {
  const [over, setOver] = useState(false);
  const uid = useId();
  const onDrop = async (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const f = await folderFromDrop(e.dataTransfer);
    if (f) onPicked(f);
  };
  const wrong =
    picked &&
    ((slot === 'adapter' && picked.kind !== 'adapter') || (slot !== 'adapter' && picked.kind !== 'model'));
  return (
    <div
      className={`drop-zone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => void onDrop(e)}
      data-testid={`local-${slot}`}
    >
      <label className="field" htmlFor={`${uid}-in`}>
        <span>{LABEL[slot]}</span>
      </label>
      <input
        id={`${uid}-in`}
        type="file"
        multiple
        {...{ webkitdirectory: '', directory: '' }}
        onChange={(e) => {
          const f = e.target.files ? folderFromInput(e.target.files) : null;
          if (f) onPicked(f);
        }}
        aria-label={`${LABEL[slot]}: choose a folder`}
      />
      <span className="muted small">
        {picked
          ? `${picked.name} · ${picked.files} files · ${formatBytes(picked.bytes)}`
          : 'or drop the folder here'}
      </span>
      {wrong && (
        <p className="hint small">
          {picked.kind === 'unknown'
            ? 'No config.json or adapter_config.json in this folder.'
            : picked.kind === 'adapter'
              ? 'This is an adapter folder (adapter_config.json); put it under LoRA adapter.'
              : 'This is a model folder (config.json), not an adapter.'}
        </p>
      )}
    </div>
  );
}

export function LocalFolderPicker({
  models,
  onUse,
}: {
  models: ExperimentSpec['models'];
  onUse: (models: ExperimentSpec['models']) => void;
}) {
  const session = useSession();
  const notify = useLab((s) => s.notify);
  const [picked, setPicked] = useState<Partial<Record<Slot, Picked>>>({});
  const uid = useId();
  const pending = useRef(0);

  const onPicked = async (slot: Slot, f: PickedFolder) => {
    if (!session) return;
    const name = uniqueName(f);
    pending.current++;
    try {
      const r = await session.openLocalFolder(name, f.files);
      setPicked((p) => ({
        ...p,
        [slot]: { name, files: r.files, bytes: r.bytes, kind: folderKind(f.files) },
      }));
    } catch (e) {
      notify('error', `Could not open the folder: ${errorMessage(e)}`);
    } finally {
      pending.current--;
    }
  };

  const wanted = [
    ...new Set(
      Object.values(models)
        .flatMap((m) => [m.source, m.adapter])
        .flatMap((s) => (s?.kind === 'local' ? [s.path] : [])),
    ),
  ];
  const missing = wanted.filter((p) => !Object.values(picked).some((x) => x?.name === p));

  const use = () => {
    const base = picked.base;
    if (!base) return;
    const src = { kind: 'local' as const, path: base.name };
    const finetuned: ModelEntry = picked.finetuned
      ? { source: { kind: 'local', path: picked.finetuned.name }, role: 'finetuned' }
      : { source: src, role: 'finetuned' };
    if (picked.adapter) finetuned.adapter = { kind: 'local', path: picked.adapter.name };
    onUse({ base: { source: src, role: 'base' }, finetuned });
  };

  return (
    <div className="stack" aria-describedby={`${uid}-note`}>
      {missing.length > 0 && (
        <p className="hint small" data-testid="local-missing">
          This experiment names local folders ({missing.join(', ')}): pick them below to run it.
        </p>
      )}
      {(['base', 'adapter', 'finetuned'] as const).map((slot) => (
        <FolderSlot
          key={slot}
          slot={slot}
          picked={picked[slot] ?? null}
          onPicked={(f) => void onPicked(slot, f)}
        />
      ))}
      <button
        type="button"
        className="btn primary"
        disabled={!picked.base || (!picked.adapter && !picked.finetuned)}
        onClick={use}
      >
        Load these folders
      </button>
      <p id={`${uid}-note`} className="muted small">
        Files stay on this computer: the engine reads them in this page. Share links carry only the folder
        names, so whoever opens the link must pick the same folders.
      </p>
    </div>
  );
}
