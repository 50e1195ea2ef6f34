/** Every base-repo sabotage still finds what it breaks: a patch that no longer applies would break nothing. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BASE_PATCHES, SABOTAGES } from './sabotage.ts';

const BASE = join(import.meta.dirname, 'base');

describe('base-repo sabotages', () => {
  it.each(Object.entries(BASE_PATCHES))('%s applies to lab/base', async (name, { patches }) => {
    expect(SABOTAGES[name], `${name} has patches but no catalogue entry`).toBeDefined();
    for (const [path, from] of patches) {
      const text = await readFile(join(BASE, path), 'utf8');
      expect(text.split(from).length - 1, `${path} should contain ${JSON.stringify(from)} once`).toBe(1);
    }
  });

  it('guards every D item with at least one sabotage', () => {
    const guarded = new Set(Object.values(SABOTAGES).flatMap((sabotage) => sabotage.guards));
    expect(['D1', 'D2', 'D3', 'D4', 'D5', 'D6', 'D7', 'D8', 'D9', 'D10'].filter((item) => !guarded.has(item))).toEqual([]);
  });
});
