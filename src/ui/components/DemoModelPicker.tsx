// The embedded demo's choice: which finetune of the toy organism to compare with its base — the plain
// finetune, the TReFT one, the interleaving one, or the LoRA adapter on the base — or the Qwen3-template
// finetune, which comes with its own base. Edits the spec's `finetuned` model (and `base`) only; must
// never load anything itself.
import { useId } from 'react';
import { DEMO_MODELS, demoBaseOf, demoEntry } from '../../lab/run/demo';
import { DEMO_MODEL_NAMES, type DemoModelName, type ExperimentSpec } from '../../lab/spec/experiment';

const FINETUNES = DEMO_MODEL_NAMES.filter((n) => !DEMO_MODELS[n].isBase);

/** The demo finetune the spec compares, or null when its models are not the demo pair. */
export function demoFinetuneOf(models: ExperimentSpec['models']): DemoModelName | null {
  const ft = models.finetuned;
  const base = models.base;
  if (!ft || !base || base.source.kind !== 'demo' || base.adapter) return null;
  const name =
    ft.adapter?.kind === 'demo'
      ? ft.adapter.name
      : ft.source.kind === 'demo' && !ft.adapter
        ? ft.source.name
        : null;
  return name && demoBaseOf(name) === base.source.name ? name : null;
}

export function demoModels(finetune: DemoModelName): ExperimentSpec['models'] {
  return { base: demoEntry(demoBaseOf(finetune), 'base'), finetuned: demoEntry(finetune, 'finetuned') };
}

export function DemoModelPicker({
  models,
  onChange,
}: {
  models: ExperimentSpec['models'];
  onChange: (models: ExperimentSpec['models']) => void;
}) {
  const uid = useId();
  const current = demoFinetuneOf(models);
  return (
    <fieldset className="stack demo-picker" aria-describedby={`${uid}-d`}>
      <legend className="small">Compare the organism base with</legend>
      {FINETUNES.map((name) => (
        <label key={name} className="check demo-choice">
          <input
            type="radio"
            name={`${uid}-ft`}
            value={name}
            checked={current === name}
            onChange={() => onChange(demoModels(name))}
            data-testid={`demo-${name}`}
          />
          <span>
            {DEMO_MODELS[name].label}
            <span className="muted small block">{DEMO_MODELS[name].description}</span>
          </span>
        </label>
      ))}
      <p id={`${uid}-d`} className="muted small">
        A toy chat model trained in this repo (organism/): small enough to run offline in any browser.
      </p>
    </fieldset>
  );
}
