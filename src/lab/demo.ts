// The embedded offline demo: which folder (relative to the app root / repo root) holds each demo model.
// One place for these paths, so the worker, the CLI and the tests agree. Must never fetch anything.
import type { DemoModelName } from './experiment';

export interface DemoModel {
  /** folder relative to the repo root (Node) and to the app's origin (browser) */
  folder: string;
  /** PEFT adapter folder, applied on top of `folder` */
  adapter?: string;
  description: string;
}

export const DEMO_MODELS: Record<DemoModelName, DemoModel> = {
  'demo-base': {
    folder: 'fixtures/tiny-llama',
    description: 'tiny random Llama (fixture): the base model',
  },
  'demo-finetuned': {
    folder: 'fixtures/tiny-llama-ft',
    description: 'tiny random Llama, fully finetuned (fixture)',
  },
};
