import { readdirSync } from 'node:fs';
import { expect, test } from 'vitest';
import { DOD_ITEMS } from '../../reporting/dod-items.ts';
import { compareSpecFiles } from './sequencer.ts';

test('the acceptance specs sort into DoD order, D10 last', () => {
  const specs = readdirSync(new URL('..', import.meta.url)).filter((name) => name.endsWith('.spec.ts'));
  const items = specs.sort(compareSpecFiles).map((name) => name.split('-')[0]!.toUpperCase());
  expect(items).toEqual(Object.keys(DOD_ITEMS));
});

test('numbers compare as numbers, not as text', () => {
  expect(['d10-x.spec.ts', 'd2-x.spec.ts', 'c7-x.spec.ts', 'd1-x.spec.ts'].sort(compareSpecFiles)).toEqual([
    'c7-x.spec.ts',
    'd1-x.spec.ts',
    'd2-x.spec.ts',
    'd10-x.spec.ts',
  ]);
});
