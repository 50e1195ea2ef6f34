/**
 * Every skip says why. For the harness's own tests (every project but cold and warm, whose DoD
 * summary gives each SKIPPED item's reason), one line per test that skipped itself, with the
 * reason it gave to `ctx.skip(reason)` or `ctx.skip(condition, reason)`: Vitest's default
 * reporter prints only a count for a file whose tests passed. Tests left out by `-t` or `.only`
 * are not listed; test/ci/skips.test.ts keeps the sources to skips that can carry a reason.
 */
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export const NO_REASON = 'no reason given';

/** The lines for the skipped tests of these modules, in run order; none when nothing skipped itself. */
export function skipLines(modules: ReadonlyArray<TestModule>, root: string = process.cwd()): string[] {
  const lines: string[] = [];
  for (const module of modules) {
    if (module.project.name === 'cold' || module.project.name === 'warm') continue;
    for (const test of module.children.allTests()) {
      const result = test.result();
      if (result.state !== 'skipped' || test.options.mode !== 'run') continue;
      lines.push(`  ↓ ${relative(root, module.moduleId)} > ${test.fullName} [${result.note?.trim() || NO_REASON}]`);
    }
  }
  return lines.length ? [`skipped (${lines.length}), each with its reason:`, ...lines] : [];
}

export default class SkipReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines = skipLines(testModules);
    if (lines.length) process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}
