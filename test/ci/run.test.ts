/**
 * What CI runs: .ci/run installs, typechecks, lints and checks the formatting (Biome), then runs
 * the harness's own tests. Vitest strips the types without checking them, so without the
 * typecheck a type error would land unseen.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string): string => readFileSync(resolve(ROOT, path), 'utf8');

/** The commands of a shell script, one per line, without comments, blank lines and `set`/`cd`. */
function commands(script: string): string[] {
  return script
    .split('\n')
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line && !/^(set|cd)\b/.test(line));
}

describe('.ci/run', () => {
  it('typechecks, lints and checks the formatting after installing and before the tests', () => {
    expect(commands(read('.ci/run'))).toEqual(['npm ci', 'npm run typecheck', 'npm run lint', 'npm run format:check', 'npm test']);
  });

  it('typechecks the whole project with tsc, emitting nothing', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(scripts.typecheck).toBe('tsc --noEmit');
  });

  it('typechecks every folder that holds TypeScript: tsconfig.json includes each', () => {
    const { include } = JSON.parse(read('tsconfig.json')) as { include: string[] };
    const topLevel = holdingTs();
    expect(topLevel).toContain('machines');
    expect(topLevel.filter((name) => !include.includes(name))).toEqual([]);
  });

  it('lints with Biome, pinned to one version, failing on warnings too; the formatter check writes nothing', () => {
    const { scripts, devDependencies } = JSON.parse(read('package.json')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };
    expect(devDependencies['@biomejs/biome']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(scripts.lint).toBe('biome lint --error-on-warnings');
    expect(scripts['format:check']).toBe('biome format');
    expect(scripts.format).toBe('biome format --write');
  });

  it('lints and formats every folder that holds TypeScript: biome.json includes each', () => {
    const { files } = JSON.parse(read('biome.json')) as { files: { includes: string[] } };
    const covered = (name: string): boolean => files.includes.some((glob) => glob === name || glob.startsWith(`${name}/**/`));
    expect(holdingTs().filter((name) => !covered(name))).toEqual([]);
  });
});

/** The top-level folders that hold TypeScript (at any depth), and the top-level .ts files. */
function holdingTs(): string[] {
  const holdsTs = (dir: string): boolean =>
    readdirSync(resolve(ROOT, dir), { withFileTypes: true }).some((entry) =>
      entry.isDirectory() ? holdsTs(`${dir}/${entry.name}`) : /\.(ts|mts)$/.test(entry.name),
    );
  return readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => !entry.name.startsWith('.') && entry.name !== 'node_modules' && entry.name !== 'reports')
    .filter((entry) => (entry.isDirectory() ? holdsTs(entry.name) : /\.(ts|mts)$/.test(entry.name)))
    .map((entry) => entry.name);
}
