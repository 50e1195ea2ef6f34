/**
 * In a long-lived session (`accept watch`, or Vitest's watch mode) each run ends with one line
 * (reporting/session-line.ts): its number, how long it took from its trigger until every reporter
 * had written (summary, run record, evidence), and its outcome. The bench and the scenario tests
 * read that line. Outside watch mode it prints nothing: Vitest calls onWatcherStart only there.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { runDoneLine, type RunPhases, type RunWord } from '../../reporting/session-line.ts';
import { worstVerdict } from '../../reporting/verdict.ts';
import { checkOf } from './dod-reporter.ts';

/** A run's phases from the marks the reporter took and what Vitest and the specs' meta say of each module. */
export function runPhases(marks: { triggered: number; runStarted: number; runEnded: number; reported: number }, modules: ReadonlyArray<TestModule>): RunPhases {
  let imported = 0;
  let duration = 0;
  let fixtures = 0;
  for (const module of modules) {
    const diagnostic = module.diagnostic();
    imported += diagnostic.environmentSetupDuration + diagnostic.prepareDuration + diagnostic.collectDuration + diagnostic.setupDuration;
    duration += diagnostic.duration;
    for (const test of module.children.allTests()) for (const ms of Object.values(test.meta().fixtureMs ?? {})) fixtures += ms;
  }
  const inRun = marks.runEnded - marks.runStarted;
  return {
    attach: Math.max(0, marks.runStarted - marks.triggered),
    worker: Math.max(0, inRun - imported - duration),
    import: imported,
    fixtures: Math.min(fixtures, duration),
    tests: Math.max(0, duration - fixtures),
    reports: Math.max(0, marks.reported - marks.runEnded),
  };
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
  private runStarted = performance.now();
  private runEnded = performance.now();
  private modules: ReadonlyArray<TestModule> = [];

  onInit(vitest: Vitest): void {
    this.acceptance = vitest.projects.length > 0 && vitest.projects.every((project) => project.name === 'warm' || project.name === 'cold');
  }

  onWatcherRerun(_files: string[], trigger?: string): void {
    this.started = performance.now();
    this.trigger = trigger ?? 'rerun';
  }

  onTestRunStart(): void {
    this.runStarted = performance.now();
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<unknown>): void {
    this.runEnded = performance.now();
    this.modules = modules;
    this.runs += 1;
    this.word = runWord(modules, unhandled.length);
  }

  // After onTestRunEnd of every reporter: the summary, the run record and the evidence are written.
  onWatcherStart(): void {
    if (!this.acceptance) return;
    const now = performance.now();
    const phases = runPhases({ triggered: this.started, runStarted: this.runStarted, runEnded: this.runEnded, reported: now }, this.modules);
    process.stdout.write(runDoneLine(this.runs, now - this.started, this.word, this.trigger, phases));
  }
}
