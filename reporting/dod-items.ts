/** The Definition of Done, as docs/dod.md states it: the ids and titles every report uses. */
export const DOD_ITEMS = {
  C1: { phase: 'Phase-1c', title: 'repo split' },
  C2: { phase: 'Phase-1c', title: 'cert in git' },
  C3: { phase: 'Phase-1c', title: 'one out-of-band secret' },
  C4: { phase: 'Phase-1c', title: 'live rebuild' },
  C5: { phase: 'Phase-1c', title: 'honest D8' },
  C6: { phase: 'Phase-1c', title: 'resource fit and cleanup' },
  C7: { phase: 'Phase-1c', title: 'docs' },
  D1: { phase: 'Phase-1', title: '!testme trigger' },
  D2: { phase: 'Phase-1', title: 'install/upgrade/backup matrix' },
  D3: { phase: 'Phase-1', title: 'Python + Playwright' },
  D4: { phase: 'Phase-1', title: 'recipe-local tests' },
  D5: { phase: 'Phase-1', title: 'per-recipe tree, no harness surgery' },
  D6: { phase: 'Phase-1', title: 'secrets: no leaks, rotatable' },
  D7: { phase: 'Phase-1', title: 'results UX' },
  D8: { phase: 'Phase-1', title: 'reproducible server' },
  D9: { phase: 'Phase-1', title: 'documentation' },
  D10: { phase: 'Phase-1', title: 'six recipes via real !testme' },
} as const;

export type DodItemId = keyof typeof DOD_ITEMS;

export function itemLabel(id: DodItemId): string {
  return `${id} ${DOD_ITEMS[id].title}`;
}

/** Suite names start with the item id; this recovers it. */
export function itemIdOf(name: string): DodItemId | undefined {
  const match = /^([CD]\d+)\b/.exec(name);
  return match && match[1]! in DOD_ITEMS ? (match[1] as DodItemId) : undefined;
}
