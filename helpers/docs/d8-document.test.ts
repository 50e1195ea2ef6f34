import { describe, expect, it } from 'vitest';
import { d8DocumentProblems, factOf, namedCommit, parseD8Document, staticHalfScope } from './d8-document.ts';

const FILE = 'docs/evidence/d8.md';
const TOPLEVEL = '/nix/store/a2w259k8c831n77ih85np0pfgdjxz08j-nixos-system-cc-ci';
const OTHER = '/nix/store/k7fwwzxn4gwyclygl9kxxnxb26is5q42-nixos-system-cc-ci';
const HASH = `sha256:${'ab'.repeat(32)}`;
/** The commit the document measured, and a later one (the document's own, say). */
const MEASURED = '3f9c2a1b7d4e5f60718293a4b5c6d7e8f9012345';
const LATER = '8e1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5';

const STATIC = [
  '## Static half',
  '',
  'Built from a clean checkout.',
  '',
  `- Commit: \`${MEASURED.slice(0, 12)}\``,
  `- Toplevel: \`${TOPLEVEL}\``,
  `- Closure hash: \`${HASH}\``,
  '- Built at: 2026-12-02T02:40:13.019Z',
];
const LIVE = [
  '## Live half',
  '',
  '- Instance: `cc-ci-lab-live`',
  '- Created at: 2026-12-02T02:40:13Z',
  '- Rebuild started at: 2026-12-02T02:41:00Z',
  '- Rebuild finished at: 2026-12-02T02:44:00Z',
  '- Rebuild exit code: 0',
  `- Toplevel: \`${TOPLEVEL}\``,
  `- Closure hash: \`${HASH}\``,
];
const document = (...sections: string[][]) => ['# D8: reproducible server', '', 'Intro.', '', ...sections.flatMap((section) => [...section, ''])].join('\n');
/** This run built `commit` (the measured one unless said) to `toplevel`; the document's commit resolves to `described`. */
// null: the base repo does not have the document's commit (a default parameter would swallow undefined).
const expecting = (toplevel = TOPLEVEL, commit = MEASURED, described: string | null = MEASURED) => ({
  measured: { toplevel, commit },
  describedCommit: described ?? undefined,
});
const problems = (text: string, toplevel = TOPLEVEL, commit = MEASURED, described: string | null = MEASURED) =>
  d8DocumentProblems(parseD8Document(text, FILE), expecting(toplevel, commit, described));
const without = (lines: string[], key: string) => lines.filter((line) => !line.includes(`${key}:`));

describe('factOf', () => {
  it('reads a fact in any Markdown layout', () => {
    for (const line of ['Toplevel: /x', '- Toplevel: `/x`', '* **Toplevel:** `/x`', '- **Toplevel**: /x', '| Toplevel | `/x` |', '  - __Toplevel__: /x']) {
      expect(factOf(line), line).toEqual({ key: 'toplevel', value: '/x' });
    }
    expect(factOf('| --- | --- |')).toBeUndefined();
    expect(factOf('Just prose.')).toBeUndefined();
  });
});

describe('a published D8 document', () => {
  it('holds when both halves are complete, the static toplevel is the one measured, and there are no limitations', () => {
    const text = document(STATIC, LIVE, ['## Limitations', '', 'None.']);
    expect(problems(text)).toEqual([]);
    const doc = parseD8Document(text, FILE);
    expect(doc.static?.facts.get('toplevel')).toEqual({ value: TOPLEVEL, line: 10 });
    expect(doc.limitations).toEqual([]);
  });

  it('holds in another layout: other heading levels, a table, a sub-heading inside a half', () => {
    const table = [
      '# Static half (clean checkout)',
      '',
      '| fact | value |',
      '| --- | --- |',
      `| Commit | ${MEASURED} |`,
      `| Toplevel | \`${TOPLEVEL}\` |`,
      '### How',
      '',
      `**Closure hash:** ${HASH}`,
      '**Built at**: 2026-12-02T02:40:13+00:00',
    ];
    expect(problems(document(table, ['### The live half', ...LIVE.slice(1)]))).toEqual([]);
  });

  it('FAILs without the static half, naming the file and the headings seen', () => {
    expect(problems(document(LIVE))).toEqual([
      `${FILE}: the D8 evidence document has no static half (no heading names "static half"; headings: 1: D8: reproducible server, 5: Live half)`,
    ]);
  });

  it('FAILs without the live half', () => {
    expect(problems(document(STATIC))).toEqual([expect.stringMatching(/^docs\/evidence\/d8\.md: the D8 evidence document has no live half/)]);
  });

  it.each([
    ['static', 'Commit', /:5: the static half \(Static half\) has no measured commit \(Commit\)/],
    ['static', 'Toplevel', /:5: the static half \(Static half\) has no toplevel \(Toplevel\)/],
    ['static', 'Closure hash', /:5: the static half \(Static half\) has no closure hash/],
    ['static', 'Built at', /:5: the static half \(Static half\) has no build timestamp/],
    ['live', 'Instance', /:14: the live half \(Live half\) has no instance name/],
    ['live', 'Created at', /:14: the live half \(Live half\) has no machine creation timestamp/],
    ['live', 'Rebuild started at', /:14: the live half \(Live half\) has no rebuild start timestamp/],
    ['live', 'Rebuild finished at', /:14: the live half \(Live half\) has no rebuild finish timestamp/],
    ['live', 'Rebuild exit code', /:14: the live half \(Live half\) has no rebuild exit code/],
    ['live', 'Toplevel', /:14: the live half \(Live half\) has no toplevel \(Toplevel\)/],
    ['live', 'Closure hash', /:14: the live half \(Live half\) has no closure hash/],
  ])('FAILs when the %s half lacks %s, at its heading line', (half, key, message) => {
    const text = half === 'static' ? document(without(STATIC, key), LIVE) : document(STATIC, without(LIVE, key));
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it('FAILs on a fact that is not what it claims: a hash that is no hash, a date that is no timestamp', () => {
    const broken = document(
      STATIC.map((line) => line.replace(HASH, 'sha256:abc').replace('2026-12-02T02:40:13.019Z', 'yesterday')),
      LIVE,
    );
    expect(problems(broken)).toEqual([
      `${FILE}:11: the static half's closure hash is not sha256:<64 hex> or sha256-<base64>: "sha256:abc"`,
      `${FILE}:12: the static half's built at is not an ISO 8601 time with a zone: "yesterday"`,
    ]);
  });

  it('FAILs when it measured the commit this run built and names another toplevel, naming both', () => {
    expect(problems(document(STATIC, LIVE), OTHER)).toEqual([
      `${FILE}:10: the static half names toplevel ${TOPLEVEL} for commit ${MEASURED.slice(0, 12)}, but this run built ${OTHER} from a clean checkout of that commit`,
    ]);
  });

  it('holds when it describes an older commit than this run built, whatever that commit built: it says which commit each side describes', () => {
    const doc = parseD8Document(document(STATIC, LIVE), FILE);
    expect(problems(document(STATIC, LIVE), OTHER, LATER)).toEqual([]);
    expect(staticHalfScope(doc, expecting(OTHER, LATER))).toBe(
      `the static half describes ${MEASURED.slice(0, 12)} (toplevel ${TOPLEVEL}), this run built ${LATER.slice(0, 12)} (toplevel ${OTHER}): not compared`,
    );
    expect(staticHalfScope(doc, expecting())).toBe(
      `the static half measured ${MEASURED.slice(0, 12)}, the commit this run built, and names its toplevel ${TOPLEVEL}`,
    );
  });

  it("FAILs on a commit that is not in the base repo's history, and on one that is no commit id", () => {
    expect(problems(document(STATIC, LIVE), TOPLEVEL, LATER, null)).toEqual([
      `${FILE}:9: the static half names commit ${MEASURED.slice(0, 12)}, which is not in the base repo's history: it is evidence for no commit of this system`,
    ]);
    const named = document(
      STATIC.map((line) => line.replace(MEASURED.slice(0, 12), 'main')),
      LIVE,
    );
    expect(problems(named, TOPLEVEL, LATER, null)).toEqual([`${FILE}:9: the static half's commit is not a git commit id, 7 to 40 hex digits: "main"`]);
    expect(namedCommit(parseD8Document(named, FILE))).toBeUndefined();
    expect(namedCommit(parseD8Document(document(STATIC, LIVE), FILE))).toBe(MEASURED.slice(0, 12));
  });

  it('FAILs on a live rebuild that did not exit 0, and on timestamps that run backwards', () => {
    const live = LIVE.map((line) => line.replace('exit code: 0', 'exit code: 4').replace('02:44:00Z', '02:39:00Z'));
    expect(problems(document(STATIC, live))).toEqual([
      `${FILE}:20: the live half records a rebuild that exited 4`,
      `${FILE}:19: the live half's timestamps run backwards: 2026-12-02T02:39:00Z is before 2026-12-02T02:41:00Z`,
    ]);
  });

  it('accepts a narrow limitation with a sign-off line', () => {
    const limits = [
      '## Limitations',
      '',
      "### Let's Encrypt renewal is not exercised",
      '',
      'The lab CA stands in for it.',
      '',
      'Signed-off-by: Ada Adversary 2026-12-01',
    ];
    const doc = parseD8Document(document(STATIC, LIVE, limits), FILE);
    expect(d8DocumentProblems(doc, expecting())).toEqual([]);
    expect(doc.limitations).toEqual([
      expect.objectContaining({ title: "Let's Encrypt renewal is not exercised", line: 26, signOff: { name: 'Ada Adversary', date: '2026-12-01', line: 30 } }),
    ]);
  });

  it('FAILs on a limitation without a sign-off line, and on loose text under Limitations', () => {
    const limits = ['## Limitations', '', "### Let's Encrypt renewal is not exercised", '', 'The lab CA stands in for it.'];
    expect(problems(document(STATIC, LIVE, limits))).toEqual([
      `${FILE}:26: the limitation "Let's Encrypt renewal is not exercised" carries no "Signed-off-by: <name> <YYYY-MM-DD>" line`,
    ]);
    expect(problems(document(STATIC, LIVE, ['## Limitations', '', 'Some things are not shown.']))).toEqual([
      `${FILE}:26: the limitation "Some things are not shown." carries no "Signed-off-by: <name> <YYYY-MM-DD>" line`,
    ]);
  });

  it('FAILs on a signed-off limitation that gives up the live half: that is not narrow', () => {
    const limits = [
      '## Limitations',
      '',
      '### Live rebuild',
      '',
      'The live half is infeasible by design (sops host-key binding).',
      '',
      '- **Signed-off-by:** Ada Adversary 2026-12-01',
    ];
    expect(problems(document(STATIC, LIVE, limits))).toEqual([`${FILE}:26: the limitation "Live rebuild" is not narrow: it gives up a whole half of D8`]);
  });

  it('reads no facts or headings inside a code block', () => {
    const fenced = ['## Static half', '', '```', '# Live half', `Toplevel: ${TOPLEVEL}`, '```'];
    const found = problems(document(fenced, LIVE));
    expect(found).toContain(`${FILE}:5: the static half (Static half) has no toplevel (Toplevel)`);
  });
});
