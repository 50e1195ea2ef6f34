import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ACCEPTANCE = fileURLToPath(new URL('..', import.meta.url));

/** Whether a call is `test(…)` or `test.each(…)(…)`. */
function isTestCall(call: ts.CallExpression): boolean {
  const callee = call.expression;
  if (ts.isIdentifier(callee)) return callee.text === 'test';
  return ts.isCallExpression(callee) && ts.isPropertyAccessExpression(callee.expression) && callee.expression.getText() === 'test.each';
}

/** Whether a test's function begins with `observes(task, …)`. */
function observesFirst(call: ts.CallExpression): boolean {
  const fn = call.arguments.find((argument) => ts.isArrowFunction(argument) || ts.isFunctionExpression(argument)) as
    | ts.ArrowFunction
    | ts.FunctionExpression
    | undefined;
  const first = fn && ts.isBlock(fn.body) ? fn.body.statements[0] : undefined;
  if (!first || !ts.isExpressionStatement(first) || !ts.isCallExpression(first.expression)) return false;
  const { expression: callee, arguments: args } = first.expression;
  return ts.isIdentifier(callee) && callee.text === 'observes' && args[0] !== undefined && ts.isIdentifier(args[0]) && args[0].text === 'task';
}

describe('every check names the machine it observed', () => {
  it('each test of each spec calls observes() first thing', async () => {
    const missing: string[] = [];
    for (const file of (await readdir(ACCEPTANCE)).filter((name) => name.endsWith('.spec.ts'))) {
      // The syntax tree, not the lines: the formatter may wrap a test's call over several.
      const source = ts.createSourceFile(file, await readFile(join(ACCEPTANCE, file), 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node) && isTestCall(node) && !observesFirst(node)) {
          missing.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(missing, `tests that do not say which machine they observe: ${missing.join(', ')}`).toEqual([]);
  });

  it('catches a test that does not, however its call is laid out', () => {
    const calls = (text: string): boolean[] => {
      const found: boolean[] = [];
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node) && isTestCall(node)) found.push(observesFirst(node));
        ts.forEachChild(node, visit);
      };
      visit(ts.createSourceFile('x.spec.ts', text, ts.ScriptTarget.Latest, true));
      return found;
    };
    expect(calls("test('a', async ({ task }) => {\n  observes(task, ciFaces());\n});")).toEqual([true]);
    expect(calls("test(\n  'a',\n  async ({\n    task,\n  }) => {\n    observes(task, ciFaces());\n  },\n);")).toEqual([true]);
    expect(calls("test.each([1])('a %s', async (n, { task }) => {\n  observes(task, ciFaces());\n});")).toEqual([true]);
    expect(calls("test('a', async ({ task }) => {\n  const x = 1;\n  observes(task, ciFaces());\n});")).toEqual([false]);
    expect(calls("test('a', async () => {\n  await step();\n});\nre.test(x);")).toEqual([false]);
  });
});
