// The browser's "Export → Python": the Python pieces of src/lab/export/python/ bundled as text (Vite
// `?raw`), and the script for a plan the worker resolved with the loaded models. Pure strings; it must
// never run anything, fetch, or put a key or token into the script.
import runtime from '../lab/export/python/runtime.py?raw';
import transformers from '../lab/export/python/target_transformers.py?raw';
import nnsight from '../lab/export/python/target_nnsight.py?raw';
import { version } from '../../package.json';
import type { ExportPlan } from '../lab/export/plan';
import { generatePythonScript, type ExportTarget, type PythonSources } from '../lab/export/script';

export const PYTHON_SOURCES: PythonSources = { runtime, transformers, nnsight };

/** The script for `plan` and `target`, stamped with this app's version. */
export function pythonScript(plan: ExportPlan, target: ExportTarget): string {
  return generatePythonScript(plan, target, PYTHON_SOURCES, {
    exporter: `piggyback-lab ${version} (browser)`,
  });
}

/** What each target is, and plainly what has not been tested here. */
export const TARGET_NOTES: Record<ExportTarget, string> = {
  transformers:
    'PyTorch forward hooks on Hugging Face transformers + peft (GPU or CPU; device_map="auto" for several GPUs). ' +
    'Tested in this repo only with its own PyTorch Llama (--backend local), where answers equal the lab token for ' +
    'token; with transformers itself it is untested here: the test machines do not have it.',
  nnsight:
    'The same interventions with nnsight (>= 0.5), on your machine or on NDIF with --remote (key from NDIF_API_KEY). ' +
    'Untested here: the test machines have neither nnsight nor transformers, so this script is only compiled.',
};
