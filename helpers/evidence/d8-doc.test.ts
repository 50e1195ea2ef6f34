import { describe, expect, it } from 'vitest';
import { d8DocumentProblems, factOf, parseD8Document } from './d8-doc.ts';

const FILE = 'docs/evidence/d8.md';
const TOPLEVEL = '/nix/store/a2w259k8c831n77ih85np0pfgdjxz08j-nixos-system-cc-ci';
const OTHER = '/nix/store/k7fwwzxn4gwyclygl9kxxnxb26is5q42-nixos-system-cc-ci';
const HASH = `sha256:${'ab'.repeat(32)}`;

const STATIC = ['## Static half', '', 'Built from a clean checkout.', '', `- Toplevel: \`${TOPLEVEL}\``, `- Closure hash: \`${HASH}\``, '- Built at: 2026-12-02T02:40:13.019Z'];
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
const problems = (text: string, measuredToplevel = TOPLEVEL) => d8DocumentProblems(parseD8Document(text, FILE), { measuredToplevel });
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
    expect(doc.static?.facts.get('toplevel')).toEqual({ value: TOPLEVEL, line: 9 });
    expect(doc.limitations).toEqual([]);
  });

  it('holds in another layout: other heading levels, a table, a sub-heading inside a half', () => {
    const table = ['# Static half (clean checkout)', '', '| fact | value |', '| --- | --- |', `| Toplevel | \`${TOPLEVEL}\` |`, '### How', '', `**Closure hash:** ${HASH}`, '**Built at**: 2026-12-02T02:40:13+00:00'];
    expect(problems(document(table, ['### The live half', ...LIVE.slice(1)]))).toEqual([]);
  });

  it('FAILs without the static half, naming the file and the headings seen', () => {
    expect(problems(document(LIVE))).toEqual([`${FILE}: the D8 evidence document has no static half (no heading names "static half"; headings: 1: D8: reproducible server, 5: Live half)`]);
  });

  it('FAILs without the live half', () => {
    expect(problems(document(STATIC))).toEqual([expect.stringMatching(/^docs\/evidence\/d8\.md: the D8 evidence document has no live half/)]);
  });

  it.each([
    ['static', 'Toplevel', /:5: the static half \(Static half\) has no toplevel \(Toplevel\)/],
    ['static', 'Closure hash', /:5: the static half \(Static half\) has no closure hash/],
    ['static', 'Built at', /:5: the static half \(Static half\) has no build timestamp/],
    ['live', 'Instance', /:13: the live half \(Live half\) has no instance name/],
    ['live', 'Created at', /:13: the live half \(Live half\) has no machine creation timestamp/],
    ['live', 'Rebuild started at', /:13: the live half \(Live half\) has no rebuild start timestamp/],
    ['live', 'Rebuild finished at', /:13: the live half \(Live half\) has no rebuild finish timestamp/],
    ['live', 'Rebuild exit code', /:13: the live half \(Live half\) has no rebuild exit code/],
    ['live', 'Toplevel', /:13: the live half \(Live half\) has no toplevel \(Toplevel\)/],
    ['live', 'Closure hash', /:13: the live half \(Live half\) has no closure hash/],
  ])('FAILs when the %s half lacks %s, at its heading line', (half, key, message) => {
    const text = half === 'static' ? document(without(STATIC, key), LIVE) : document(STATIC, without(LIVE, key));
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it('FAILs on a fact that is not what it claims: a hash that is no hash, a date that is no timestamp', () => {
    const broken = document(STATIC.map((line) => line.replace(HASH, 'sha256:abc').replace('2026-12-02T02:40:13.019Z', 'yesterday')), LIVE);
    expect(problems(broken)).toEqual([
      `${FILE}:10: the static half's closure hash is not sha256:<64 hex> or sha256-<base64>: "sha256:abc"`,
      `${FILE}:11: the static half's built at is not an ISO 8601 time with a zone: "yesterday"`,
    ]);
  });

  it('FAILs when the static toplevel is not what this run built, naming both', () => {
    expect(problems(document(STATIC, LIVE), OTHER)).toEqual([`${FILE}:9: the static half names toplevel ${TOPLEVEL}, but this run built ${OTHER} from a clean checkout`]);
  });

  it('FAILs on a live rebuild that did not exit 0, and on timestamps that run backwards', () => {
    const live = LIVE.map((line) => line.replace('exit code: 0', 'exit code: 4').replace('02:44:00Z', '02:39:00Z'));
    expect(problems(document(STATIC, live))).toEqual([
      `${FILE}:19: the live half records a rebuild that exited 4`,
      `${FILE}:18: the live half's timestamps run backwards: 2026-12-02T02:39:00Z is before 2026-12-02T02:41:00Z`,
    ]);
  });

  it('accepts a narrow limitation with a sign-off line', () => {
    const limits = ['## Limitations', '', '### Let\'s Encrypt renewal is not exercised', '', 'The lab CA stands in for it.', '', 'Signed-off-by: Ada Adversary 2026-12-01'];
    const doc = parseD8Document(document(STATIC, LIVE, limits), FILE);
    expect(d8DocumentProblems(doc, { measuredToplevel: TOPLEVEL })).toEqual([]);
    expect(doc.limitations).toEqual([expect.objectContaining({ title: "Let's Encrypt renewal is not exercised", line: 25, signOff: { name: 'Ada Adversary', date: '2026-12-01', line: 29 } })]);
  });

  it('FAILs on a limitation without a sign-off line, and on loose text under Limitations', () => {
    const limits = ['## Limitations', '', '### Let\'s Encrypt renewal is not exercised', '', 'The lab CA stands in for it.'];
    expect(problems(document(STATIC, LIVE, limits))).toEqual([`${FILE}:25: the limitation "Let's Encrypt renewal is not exercised" carries no "Signed-off-by: <name> <YYYY-MM-DD>" line`]);
    expect(problems(document(STATIC, LIVE, ['## Limitations', '', 'Some things are not shown.']))).toEqual([
      `${FILE}:25: the limitation "Some things are not shown." carries no "Signed-off-by: <name> <YYYY-MM-DD>" line`,
    ]);
  });

  it('FAILs on a signed-off limitation that gives up the live half: that is not narrow', () => {
    const limits = ['## Limitations', '', '### Live rebuild', '', 'The live half is infeasible by design (sops host-key binding).', '', '- **Signed-off-by:** Ada Adversary 2026-12-01'];
    expect(problems(document(STATIC, LIVE, limits))).toEqual([`${FILE}:25: the limitation "Live rebuild" is not narrow: it gives up a whole half of D8`]);
  });

  it('reads no facts or headings inside a code block', () => {
    const fenced = ['## Static half', '', '```', '# Live half', `Toplevel: ${TOPLEVEL}`, '```'];
    const found = problems(document(fenced, LIVE));
    expect(found).toContain(`${FILE}:5: the static half (Static half) has no toplevel (Toplevel)`);
  });
});
