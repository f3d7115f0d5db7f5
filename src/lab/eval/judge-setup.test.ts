// Model judges from the spec or a source: their identities (computed without loading, equal to the
// loaded judge's), the LoRA dose of a base that shares its session with an adapter, and a judge on a
// separate model source scoring through its own tokenizer and template.
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { folderSource } from '../../hub/folder-files-node';
import { defaultSpec, type ExperimentSpec } from '../spec/experiment';
import { fillJudgePrompt } from './em-data';
import {
  sourceModelJudge,
  sourceModelJudgeIdentity,
  specModelJudge,
  specModelJudgeIdentity,
} from './judge-setup';
import { Lab } from '../run/lab';

const FIX = path.resolve(__dirname, '../../../fixtures');
const lab = new Lab({
  resolveSource: (s) => folderSource(path.join(FIX, s.kind === 'local' ? s.path : 'missing')),
  backend: 'node-cpu',
});
afterAll(() => lab.dispose());

const local = (p: string) => ({ kind: 'local' as const, path: p });

describe('judge setup', () => {
  it('a spec model: the identity without loading equals the loaded judge; a LoRA base runs at dose 0', async () => {
    const spec: ExperimentSpec = {
      ...defaultSpec(),
      models: {
        base: { source: local('tiny-llama'), role: 'base' },
        finetuned: { source: local('tiny-llama'), adapter: local('tiny-llama-lora'), role: 'finetuned' },
      },
    };
    expect(specModelJudgeIdentity(spec)).toEqual({
      id: 'model:local:tiny-llama@0',
      label: 'base model (local:tiny-llama)',
    });
    expect(specModelJudgeIdentity(spec, 'finetuned').id).toBe(
      'model:local:tiny-llama+local:tiny-llama-lora@1',
    );
    const judge = await specModelJudge(lab, spec);
    expect({ id: judge.id, label: judge.label }).toEqual(specModelJudgeIdentity(spec));
    expect(() => specModelJudgeIdentity(spec, 'judge')).toThrow(/no model "judge" in the spec/);
  });

  it('a separate model source judges with its own tokenizer and template', async () => {
    const judge = await sourceModelJudge(lab, local('tiny-qwen2'));
    expect({ id: judge.id, label: judge.label }).toEqual(sourceModelJudgeIdentity(local('tiny-qwen2')));
    const prompt = fillJudgePrompt('Rate 0-100: {question} / {answer}', 'q', 'a');
    expect(judge.checkPrompt(prompt)).toBeNull();
    const ids = judge.promptIds(prompt);
    expect(ids.slice(0, 1)).toEqual([508]); // <|im_start|>: the Qwen template, not Llama's
    const s = await judge.score(prompt);
    expect(s.method).toBe('exact');
    expect(s.numberMass).toBeGreaterThan(0);
  });
});
