/**
 * In a long-lived session (`accept watch`, or Vitest's watch mode) each run ends with one line:
 * its number, how long it took from its trigger until every reporter had written (summary, run
 * record, evidence), and its outcome. The bench and the scenario tests read that line. Outside
 * watch mode it prints nothing: Vitest calls onWatcherStart only there.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { formatDuration } from '../../helpers/common/log.ts';
import { worstVerdict } from './allure-meta.ts';
import { checkOf } from './dod-reporter.ts';

export type RunWord = 'PASS' | 'FAIL' | 'ERROR' | 'SKIPPED' | 'NONE';

/** The line that closes each run of a session. */
export const RUN_DONE = /^accept watch: run (\d+) took (\d+) ms: (PASS|FAIL|ERROR|SKIPPED|NONE)\b/m;

export function runDoneLine(run: number, ms: number, word: RunWord, trigger: string): string {
  return `accept watch: run ${run} took ${Math.round(ms)} ms: ${word} (${trigger}; ${formatDuration(ms)}). Enter re-runs, q quits.\n`;
}

/** The outcome of one run, by the DoD reporter's verdicts: the worst check's, and ERROR for an error outside every check. */
export function runWord(modules: ReadonlyArray<TestModule>, unhandled: number): RunWord {
  const verdicts = modules.flatMap((module) => [...module.children.allTests()].map((test) => checkOf(test).verdict));
  if (unhandled > 0 || modules.some((module) => module.errors().length > 0)) verdicts.push('ERROR');
  return worstVerdict(verdicts) ?? 'NONE';
}

export default class SessionReporter implements Reporter {
  /** Only acceptance sessions say it: the harness's own tests in watch mode keep Vitest's output. */
  private acceptance = false;
  private started = performance.now();
  private runs = 0;
  private word: RunWord = 'NONE';
  private trigger = 'start';

  onInit(vitest: Vitest): void {
    this.acceptance = vitest.projects.length > 0 && vitest.projects.every((project) => project.name === 'warm' || project.name === 'cold');
  }

  onWatcherRerun(_files: string[], trigger?: string): void {
    this.started = performance.now();
    this.trigger = trigger ?? 'rerun';
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<unknown>): void {
    this.runs += 1;
    this.word = runWord(modules, unhandled.length);
  }

  // After onTestRunEnd of every reporter: the summary, the run record and the evidence are written.
  onWatcherStart(): void {
    if (this.acceptance) process.stdout.write(runDoneLine(this.runs, performance.now() - this.started, this.word, this.trigger));
  }
}
