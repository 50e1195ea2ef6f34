import { describe, expect, it } from 'vitest';
import { harnessModules } from './session-pool.ts';

// That no module kept loaded imports one evaluated afresh is a dependency rule (test/deps, SESSION_KEPT_RULE).
describe("the kept worker's fresh modules", () => {
  it('are the specs and every layer above helpers/, and SSH, none under node_modules', () => {
    const modules = harnessModules();
    for (const name of [
      'acceptance/support/dod.ts',
      'acceptance/c2-cert-in-git.spec.ts',
      'helpers/ssh/index.ts',
      'machines/host.ts',
      'reporting/dod-items.ts',
      'lab/index.ts',
    ]) {
      expect(
        modules.some((path) => path.endsWith(`/${name}`)),
        name,
      ).toBe(true);
    }
    expect(
      modules.some((path) => path.endsWith('/helpers/incus/client.ts')),
      'helpers/incus/client.ts stays loaded',
    ).toBe(false);
    expect(modules.filter((path) => path.includes('node_modules'))).toEqual([]);
  });
});
