// What running an experiment produces: the rendered prompt as segmented tokens, and per-condition
// answers and metrics, keyed by condition id. Plain data (structured-clone and JSON safe): the worker
// sends it to the UI, the CLI prints it. Must never hold ORT tensors or functions.

import type { PatchComponent, SegmentName } from './experiment';

export interface PromptToken {
  id: number;
  text: string;
  segment: SegmentName;
  /** true when a perturbation or manual edit changed this token */
  edited?: boolean;
  /**
   * An added/control token (`<|im_start|>`, `<bos>`): set while the lab works on a prompt when the
   * template knows (perturb.ts's `looksSpecial` guesses from the text otherwise); results leave it out.
   */
  special?: boolean;
}

export interface PromptView {
  /** the rendered template text */
  text: string;
  tokens: PromptToken[];
  /** half-open token index ranges */
  segments: Record<SegmentName, [number, number]>;
  /** template arguments actually used (e.g. the pinned date_string) */
  templateArgs: Record<string, string | number | boolean>;
}

export interface TokenProb {
  id: number;
  text: string;
  prob: number;
}

export interface ConditionMetrics {
  /** KL(P_base ‖ P_condition) at the first answer position, nats */
  klToBase?: number | null;
  /** (m − m_ft)/(m_base − m_ft) of the KL metric; null when base and finetuned agree */
  restoration?: number | null;
  /** mean log-prob of aligned references minus misaligned ones */
  referenceMargin?: number | null;
  /** random perturbation trials: best and average restoration */
  trialsBest?: number | null;
  trialsAvg?: number | null;
  /** KL(P_base ‖ P_finetuned) at the first answer position: restoration's denominator (near 0: restoration is noise) */
  klFinetuned?: number | null;
}

/** One random-perturbation trial: what it changed, its first-token restoration and its own whole answer. */
export interface TrialResult {
  /** 0-based, in the perturbation's seeded order */
  index: number;
  /** restoration of KL(base ‖ trial) at the first answer token */
  restoration: number | null;
  /** the prompt positions this trial replaced */
  edited: number[];
  /** what it replaced at each edited position: the token before → after (absent in older results) */
  replacements?: { position: number; from: { id: number; text: string }; to: { id: number; text: string } }[];
  /** the trial's answer with the condition's generation settings (the same answer an edits condition gives) */
  text: string;
  /** the answer's token ids (absent in results files written before they were recorded) */
  tokenIds?: number[];
}

export interface ConditionResult {
  id: string;
  label: string;
  model: string;
  /** the prompt this condition ran (differs from the base prompt when perturbed) */
  prompt: PromptView;
  text: string;
  tokenIds: number[];
  done: boolean;
  metrics: ConditionMetrics;
  /** next-token distribution at the first answer position, top-k */
  nextToken: TokenProb[];
  /** the patch actually applied, in words (e.g. "K/V · layers 0–3 · 23 prefix positions") */
  patchSummary?: string;
  /** random perturbation: every trial, in order; `text` is the answer of trial `shownTrial` */
  trials?: TrialResult[];
  /** index of the trial whose prompt and answer the condition shows (the best by first-token restoration) */
  shownTrial?: number;
  error?: string;
}

export interface SweepResult {
  component: PatchComponent;
  metric: string;
  /** row labels: layer (or residual site) numbers */
  layers: number[];
  /** column labels: prompt token positions */
  positions: number[];
  positionLabels: string[];
  /** row-major [layers × positions]; NaN where not computed */
  values: number[];
  done: boolean;
  /**
   * 'head': a per-head K/V sweep — the columns (`positions`) are KV-head indices, each cell patching one
   * KV head at every position of `patchedPositions` (default the prefix). Absent: the columns are
   * prompt positions.
   */
  axis?: 'head';
  /** per-head sweep: the prompt positions every cell patches */
  patchedPositions?: number[];
}

/** Where an answer position's attention goes: the prompt's three segments and the answer so far. */
export const ATTENTION_REGIONS = ['prefix', 'query', 'postfix', 'answer'] as const;
export type AttentionRegion = (typeof ATTENTION_REGIONS)[number];

export interface AttentionCondition {
  id: string;
  label: string;
  model: string;
  /**
   * mean over the answer positions of the attention probability on each region, row-major
   * [layers × heads × regions] (regions in ATTENTION_REGIONS order; each (layer, head) sums to 1)
   */
  mass: number[];
  /** the answer positions read (absolute slots in prompt + answer) */
  answerPositions: number[];
  /** the answer tokens teacher-forced after the prompt (answerTokens − 1 of them) */
  answerText: string;
  error?: string;
}

export interface AttentionResult {
  layers: number[];
  /** query heads (attention probabilities are per query head; GQA shares a KV head between them) */
  heads: number;
  kvHeads: number;
  regions: AttentionRegion[];
  answerTokens: number;
  conditions: AttentionCondition[];
  /**
   * the plain finetuned model's prefix mass minus the plain base model's, [layers × heads], on the
   * unperturbed prompt
   */
  prefixDiff: number[];
  basePrefixMass: number[];
  finetunedPrefixMass: number[];
}

export interface DriftResult {
  layers: number[];
  lk: number[];
  lv: number[];
  /** 1/L Σ (L_K + L_V) */
  lkv: number;
  /**
   * The same drift as the paper's released trainer computes it: k_proj / v_proj of the residual
   * *before* the input RMSNorm (a proxy: attention sees the normed values above)
   */
  code?: { lk: number[]; lv: number[]; lkv: number };
}

/** One token of a logit-lens read-out. */
export interface LensToken {
  id: number;
  text: string;
  prob: number;
}

/** The lens at one position of one condition. */
export interface LensPosition {
  /** index in the condition's token sequence (prompt, then the teacher-forced answer) */
  position: number;
  /** the token at that position (the lens predicts the one after it) */
  label: string;
  /** 'answer' mode: the answer token that follows (teacher-forced) */
  next?: { id: number; text: string };
  /** [site][tracked]: probability of each tracked token, site 0 … numLayers */
  tracked: number[][];
  /** [site]: top-k tokens, most probable first */
  top: LensToken[][];
}

export interface LensCondition {
  id: string;
  label: string;
  model: string;
  positions: LensPosition[];
  /** what was applied (the patch summary, the perturbation trial), as in the run's card */
  note?: string;
  error?: string;
}

/** The logit lens (Lab.lens): residual site l through the final norm and the unembedding, per condition. */
export interface LensResult {
  /** residual sites 0 … numLayers (site l = the stream entering layer l; numLayers = after the last) */
  sites: number[];
  /** the tracked tokens; `role` says why each is tracked */
  tracked: { id: number; text: string; role: 'finetuned' | 'base' | 'extra' }[];
  mode: 'first' | 'answer';
  topK: number;
  conditions: LensCondition[];
}

export interface RunResult {
  specVersion: number;
  backend: string;
  prompt: PromptView;
  conditions: ConditionResult[];
}
