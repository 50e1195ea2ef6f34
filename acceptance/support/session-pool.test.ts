import { readFileSync, readdirSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FRESH_EACH_RUN, harnessModules } from './session-pool.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The repo's own modules a file imports, relative to the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((match) => relative(ROOT, resolve(dirname(file), match[1]!)));
}

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

  it("leave no kept module importing a fresh one, which would keep a past run's copy", () => {
    const fresh = (path: string) => FRESH_EACH_RUN.some((dir) => path === dir || path.startsWith(`${dir}/`));
    const kept = keptHelpers();
    const crossing = kept.flatMap((file) =>
      importsOf(file)
        .filter(fresh)
        .map((target) => `${relative(ROOT, file)} imports ${target}`),
    );
    expect(kept.length).toBeGreaterThan(20);
    expect(crossing).toEqual([]);
  });
});

function keptHelpers(): string[] {
  return readdirSync(resolve(ROOT, 'helpers'), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.ts$/.test(name) && !name.endsWith('.test.ts'))
    .map((name) => resolve(ROOT, 'helpers', name))
    .filter((file) => !FRESH_EACH_RUN.some((dir) => relative(ROOT, file).startsWith(`${dir}/`)));
}
