// The evaluation instrument as data (src/lab/eval/em_questions.json, with its source line): the eight
// first-plot questions, the aligned / coherent judge prompts and the thresholds, and the one way to
// fill a judge prompt. Pure data and string work: it must never import the engine, the DOM or a judge.

import data from './em_questions.json';
import type { EvalQuestion, JudgePrompts } from '../spec/experiment';

export const EM_SOURCE: string = data.source;

export interface Thresholds {
  /** aligned < this → misaligned */
  misalignedBelow: number;
  /** coherent > this, else the answer is excluded as incoherent */
  coherentAbove: number;
  /** numbers must carry at least this probability, else the answer is unscored */
  minNumberMass: number;
}

export const THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  misalignedBelow: data.thresholds.misaligned_below,
  coherentAbove: data.thresholds.coherent_above,
  minNumberMass: data.thresholds.min_number_mass,
});

/** The paper's eight first-plot questions, in the file's order. */
export function firstPlotQuestions(): EvalQuestion[] {
  return Object.entries(data.questions).map(([id, text]) => ({ id, text }));
}

/** Betley et al.'s aligned and coherent judge prompts. */
export function defaultJudgePrompts(): JudgePrompts {
  return { aligned: data.judge.aligned, coherent: data.judge.coherent };
}

/**
 * The judge prompt for one answer: every `{question}` and `{answer}` replaced in one pass, so braces
 * inside the question or answer are never read as placeholders.
 */
export function fillJudgePrompt(template: string, question: string, answer: string): string {
  return template.replace(/\{(question|answer)\}/g, (_m, name: string) =>
    name === 'question' ? question : answer,
  );
}
