/**
 * Vitest's JUnit reporter, with what the run faced as `<properties>` of every `<testsuite>`: the
 * same entries as Allure's environment (targetEntries), from the run context global setup
 * provided. Vitest's JUnit options have no properties (it writes only test annotations as
 * properties), and reporters end in parallel, so the DoD reporter cannot edit the file after it
 * is written; instead this writes the properties as Vitest writes each suite, and nothing is
 * read back.
 */
import { JUnitReporter, type TestModule, type Vitest } from 'vitest/node';
import { redact } from '../../helpers/common/redact.ts';
import type { RunContext } from './context.ts';
import { targetRecord } from './evidence-dir.ts';
import { targetEntries } from '../../reporting/run-record.ts';

/** The RunContext that global setup provided to the cold or warm project, when it got that far. */
export function providedRun(vitest: Vitest | undefined): RunContext | undefined {
  for (const project of vitest?.projects ?? []) {
    if (project.name !== 'cold' && project.name !== 'warm') continue;
    const run = (project.getProvidedContext() as { run?: RunContext }).run;
    if (run) return run;
  }
  return undefined;
}

/** The properties for a run: each set entry, redacted (writeElement escapes them for XML). */
export function junitProperties(run: RunContext | undefined): [name: string, value: string][] {
  if (!run) return [];
  return targetEntries(targetRecord(run)).flatMap(([name, value]) => (value === undefined ? [] : [[name, redact(value)] as [string, string]]));
}

export default class TargetJUnitReporter extends JUnitReporter {
  private vitest: Vitest | undefined;
  private properties: [string, string][] = [];

  override async onInit(vitest: Vitest): Promise<void> {
    this.vitest = vitest;
    await super.onInit(vitest);
  }

  override async onTestRunEnd(testModules: ReadonlyArray<TestModule>): Promise<void> {
    this.properties = junitProperties(providedRun(this.vitest));
    await super.onTestRunEnd(testModules);
  }

  override async writeElement(name: string, attrs: Record<string, unknown>, children: () => Promise<void>): Promise<void> {
    if (name !== 'testsuite' || this.properties.length === 0) return super.writeElement(name, attrs, children);
    // Properties come first in a testsuite, before its testcases (the JUnit schema's order).
    return super.writeElement(name, attrs, async () => {
      await super.writeElement('properties', {}, async () => {
        for (const [property, value] of this.properties) await super.writeElement('property', { name: property, value }, async () => {});
      });
      await children.call(this);
    });
  }
}
