// What the cards say while the models load: the step in flight (engine start, config check, download,
// model i of n: weights with bytes, graph, session, warm-up) in words, from the latest progress event.
// Pure: the store's `loading` and `promptStatus` in, a line out (LoadStatus and ConditionCard show it).
import { formatBytes } from '../common/format';
import type { LoadProgress } from '../worker/protocol';

export type LoadStepStage = 'engine' | LoadProgress['stage'];

export interface LoadStep {
  stage: LoadStepStage;
  /** one line in words, e.g. "Model 1 of 1 (finetuned): reading weights · 3.3 MB" */
  text: string;
  /** how far the step is, for a progress bar; total 0 = unknown */
  loaded: number;
  total: number;
}

function duration(s: number): string {
  if (s < 1) return '<1 s';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** A download's line: file, bytes of total, "from cache" or rate and time left. */
export function describeDownload(p: LoadProgress): string {
  const parts = [p.file ?? 'files'];
  parts.push(p.total > 0 ? `${formatBytes(p.loaded)} / ${formatBytes(p.total)}` : formatBytes(p.loaded));
  if (p.cached) parts.push('from cache');
  else {
    if (p.rate && p.rate > 0) parts.push(`${formatBytes(p.rate)}/s`);
    if (p.etaSeconds !== null && p.etaSeconds !== undefined && p.loaded < p.total)
      parts.push(`about ${duration(p.etaSeconds)} left`);
  }
  return parts.join(' · ');
}

/** A model stage in words, without the model's name (LoadStatus puts it in front). */
export function describeStage(p: LoadProgress): string {
  switch (p.stage) {
    case 'preflight':
      return p.loaded < p.total ? 'checking configs' : 'configs checked';
    case 'download':
      return describeDownload(p);
    case 'parse': {
      const bytes = p.weightBytes ? ` · ${formatBytes(p.weightBytes)}` : '';
      const tensors = p.total > 1 ? ` (${p.loaded} of ${p.total} tensors)` : '';
      return `reading weights${bytes}${tensors}`;
    }
    case 'graph':
      return 'building the ONNX graph';
    case 'session':
      return 'opening the ONNX Runtime session (the first one also loads the runtime)';
    case 'warmup':
      return 'warm-up run on WebGPU (compiles the shaders)';
    case 'ready':
      return 'ready';
  }
}

/** "Model 1 of 2 (finetuned)" when the event says where it stands, else the model's name. */
function whichModel(p: LoadProgress): string {
  if (p.index && p.count) return `Model ${p.index} of ${p.count} (${p.model})`;
  return p.model;
}

/**
 * The step the load is at, or null when nothing is loading. Before the first event the worker is
 * starting (and, on a first visit, fetching ONNX Runtime): that is the `engine` step.
 */
export function currentLoadStep(loading: LoadProgress | null, promptStatus: string): LoadStep | null {
  if (promptStatus !== 'running') return null;
  if (!loading) return { stage: 'engine', text: 'Starting the engine…', loaded: 0, total: 0 };
  const p = loading;
  switch (p.stage) {
    case 'preflight':
      return { stage: p.stage, text: 'Checking the models’ configs…', loaded: p.loaded, total: p.total };
    case 'download':
      return {
        stage: p.stage,
        text: `Downloading ${p.model}: ${describeDownload(p)}`,
        loaded: p.loaded,
        total: p.total,
      };
    case 'ready':
      return {
        stage: p.stage,
        text: `${whichModel(p)} ready${p.index && p.count && p.index < p.count ? '' : ' · rendering the prompt…'}`,
        loaded: 1,
        total: 1,
      };
    default: {
      const text = describeStage(p);
      return {
        stage: p.stage,
        text: `${whichModel(p)}: ${text}…`,
        loaded: p.loaded,
        total: p.total > 1 ? p.total : 0,
      };
    }
  }
}
