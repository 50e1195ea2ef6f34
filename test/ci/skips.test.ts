/**
 * A skipped test always says why: the harness's tests skip with `ctx.skip(reason)` or
 * `ctx.skip(condition, reason)`, whose reason the skip reporter prints. `.skip`, `.skipIf` and
 * `.runIf` on a test or suite carry none, and neither does `ctx.skip()` with no argument.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { TestModule } from 'vitest/node';
import { NO_REASON, skipLines } from '../../acceptance/support/skip-reporter.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SELF = 'test/ci/skips.test.ts';

/** The Vitest forms that skip without a reason. */
const REASONLESS: [RegExp, string][] = [
  [/\b(?:it|test|describe|suite)(?:\.\w+)*\.(?:skipIf|runIf)\s*\(/, 'skipIf/runIf carry no reason: use ctx.skip(condition, reason) in the test'],
  [/\b(?:it|test|describe|suite)(?:\.\w+)*\.skip\s*\(/, 'a skipped test or suite carries no reason: use ctx.skip(reason) in the test, or remove it'],
  [/\.skip\(\s*\)/, 'ctx.skip() without a reason: give it one'],
];

/** Each reasonless skip in a source: "line: text (why)". */
function reasonlessSkips(source: string): string[] {
  const found: string[] = [];
  source.split('\n').forEach((line, index) => {
    const code = line.replace(/\/\/.*$/, '');
    for (const [pattern, why] of REASONLESS) if (pattern.test(code)) found.push(`${index + 1}: ${line.trim()} (${why})`);
  });
  return found;
}

function testSources(dir: string): string[] {
  return readdirSync(resolve(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    if (entry.name.startsWith('.') || entry.name === 'node_modules' || entry.name === 'reports') return [];
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) return testSources(path);
    return /\.(test|spec)\.ts$/.test(entry.name) && path !== SELF ? [path] : [];
  });
}

describe('skips', () => {
  it('no test or spec of the repository skips without a reason', () => {
    const sources = testSources('');
    expect(sources).toContain('lab/browser.test.ts');
    const found = sources.flatMap((path) => reasonlessSkips(readFileSync(resolve(ROOT, path), 'utf8')).map((hit) => `${path}:${hit}`));
    expect(found).toEqual([]);
  });

  it('tells the reasonless forms from those with a reason', () => {
    const source = [
      "it.skipIf(!hasTool)('compares', () => {});",
      "describe.runIf(linux)('suite', () => {});",
      "it.concurrent.skip('later', () => {});",
      'ctx.skip();',
      "if (!sops) ctx.skip('no sops binary on PATH');",
      "ctx.skip(!HAS_BROWSER, 'no browser engine on this machine');",
      'const skipped = items.filter(skipIfUnset); // it.skip( in a comment',
    ].join('\n');
    expect(reasonlessSkips(source).map((hit) => hit.split(':')[0])).toEqual(['1', '2', '3', '4']);
  });
});

describe('the skip reporter', () => {
  const module = (project: string, moduleId: string, tests: { fullName: string; mode: string; state: string; note?: string }[]): TestModule =>
    ({
      project: { name: project },
      moduleId,
      children: {
        allTests: () =>
          tests.map((test) => ({ fullName: test.fullName, options: { mode: test.mode }, result: () => ({ state: test.state, note: test.note }) })),
      },
    }) as unknown as TestModule;

  it('lists each test that skipped itself with its reason, and nothing for tests left out or acceptance specs', () => {
    const lines = skipLines(
      [
        module('unit', '/repo/lab/browser.test.ts', [
          { fullName: 'browser > runs on Chromium', mode: 'run', state: 'skipped', note: 'no browser engine on this machine' },
          { fullName: 'browser > without a browser', mode: 'run', state: 'passed' },
          { fullName: 'browser > filtered out by -t', mode: 'skip', state: 'skipped' },
        ]),
        module('unit', '/repo/helpers/x.test.ts', [{ fullName: 'x > bare', mode: 'run', state: 'skipped' }]),
        module('cold', '/repo/acceptance/c1.spec.ts', [{ fullName: 'C1 > a check', mode: 'run', state: 'skipped', note: 'not on this target' }]),
      ],
      '/repo',
    );
    expect(lines).toEqual([
      'skipped (2), each with its reason:',
      '  ↓ lab/browser.test.ts > browser > runs on Chromium [no browser engine on this machine]',
      `  ↓ helpers/x.test.ts > x > bare [${NO_REASON}]`,
    ]);
    expect(skipLines([module('unit', '/repo/a.test.ts', [{ fullName: 'a', mode: 'run', state: 'passed' }])], '/repo')).toEqual([]);
  });
});
