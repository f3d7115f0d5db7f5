// A mini layer ruler: one toggle button per layer (or residual site) to pick which layers a patch
// covers. Must never change anything but the selected list it reports.
interface Props {
  count: number;
  selected: readonly number[];
  onChange: (layers: number[]) => void;
  label: string;
}

export function LayerRuler({ count, selected, onChange, label }: Props) {
  const set = new Set(selected);
  return (
    <div className="ruler" role="group" aria-label={label}>
      {Array.from({ length: count }, (_, l) => (
        <button
          type="button"
          key={l}
          className={`ruler-tick${set.has(l) ? ' on' : ''}`}
          aria-pressed={set.has(l)}
          title={`layer ${l}`}
          onClick={() => {
            const next = set.has(l)
              ? selected.filter((x) => x !== l)
              : [...selected, l].sort((a, b) => a - b);
            if (next.length > 0) onChange(next);
          }}
        >
          {l}
        </button>
      ))}
    </div>
  );
}
