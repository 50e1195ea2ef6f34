import { describe, expect, it } from 'vitest';
import { harnessModules } from './session-pool.ts';

describe("the kept worker's fresh modules", () => {
  it("are every module of the harness's own (fixtures, run context, helpers' state), none under node_modules", () => {
    const modules = harnessModules();
    for (const name of ['acceptance/support/dod.ts', 'acceptance/c2-cert-in-git.spec.ts', 'helpers/common/redact.ts', 'helpers/ssh/index.ts', 'machines/host.ts', 'reporting/dod-items.ts']) {
      expect(modules.some((path) => path.endsWith(`/${name}`)), name).toBe(true);
    }
    expect(modules.filter((path) => path.includes('node_modules'))).toEqual([]);
  });
});
