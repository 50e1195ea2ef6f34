/**
 * The acceptance specs share one throwaway, and D4–D6 change it: their rebuilds relink the cert
 * from git and restart services. Vitest's default order follows cached durations and file sizes,
 * so a broken host could be repaired before the spec guarding it looked, and verdicts would depend
 * on the cache. Specs therefore run in DoD order: C1…C7, then D1…D10.
 */
import { basename } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** c1-… < c7-… < d1-… < d2-… < d10-…: numeric-aware order of the spec file names. */
export function compareSpecFiles(a: string, b: string): number {
  return basename(a).localeCompare(basename(b), 'en', { numeric: true });
}

export class DodOrderSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isSpec = (file: TestSpecification) => file.moduleId.endsWith('.spec.ts');
    const specs = sorted.filter(isSpec).sort((a, b) => compareSpecFiles(a.moduleId, b.moduleId));
    return [...sorted.filter((file) => !isSpec(file)), ...specs];
  }
}
