import { describe, expect, it } from 'vitest';
import { markedShellBlocks, parseRunbook } from './index.ts';

const doc = [
  '# Install',
  '```sh',
  'echo illustration only',
  '```',
  '```sh runbook',
  'git clone --recursive git://h/cc-ci.git /root/cc-ci',
  '```',
  '```runbook provision-key',
  '/var/lib/sops-nix/key.txt 0600',
  '```',
  '~~~sh runbook',
  "nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'",
  '~~~',
].join('\n');

describe('parseRunbook', () => {
  it('keeps only marked blocks, in order, with their line numbers', () => {
    expect(parseRunbook(doc, 'install.md')).toEqual([
      { kind: 'sh', index: 1, line: 5, script: 'git clone --recursive git://h/cc-ci.git /root/cc-ci' },
      { kind: 'provision-key', index: 2, line: 8, path: '/var/lib/sops-nix/key.txt', mode: 0o600 },
      { kind: 'sh', index: 3, line: 11, script: "nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'" },
    ]);
  });

  it('rejects a file without steps, naming it, showing both ways to mark steps and the dry run', () => {
    const call = () => parseRunbook('# nothing\n```sh\nls\n```', 'docs/install.md');
    expect(call).toThrow(/docs\/install.md holds no runbook steps/);
    expect(call).toThrow(/```sh runbook/);
    expect(call).toThrow(/<!-- runbook --> on the line before each shell block/);
    expect(call).toThrow(/`npx accept runbook docs\/install.md` prints the steps/);
  });

  it('reads the same steps from a document written for people, marked by annotations that do not render', () => {
    const annotated = [
      '# Install',
      '```sh',
      'echo illustration only',
      '```',
      '<!-- runbook -->',
      '',
      '```bash',
      'git clone --recursive git://h/cc-ci.git /root/cc-ci',
      '```',
      'Copy the bootstrap key to `/var/lib/sops-nix/key.txt`, readable by root only.',
      '<!-- runbook provision-key /var/lib/sops-nix/key.txt 0600 -->',
      '<!-- runbook -->',
      '```console',
      "# nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'",
      'building the system configuration...',
      '```',
    ].join('\n');
    expect(parseRunbook(annotated, 'install.md').map(({ line: _line, ...step }) => step)).toEqual(
      parseRunbook(doc, 'install.md').map(({ line: _line, ...step }) => step),
    );
  });

  it("names an annotation that marks nothing, or marks a block that is not a shell's", () => {
    expect(() => parseRunbook('<!-- runbook -->\nSome prose.\n```sh\nls\n```', 'i.md')).toThrow(/^i.md:1: <!-- runbook --> marks no fenced block/);
    expect(() => parseRunbook('<!-- runbook -->\n```nix\n{ }\n```', 'i.md')).toThrow(
      /i.md:2: <!-- runbook --> marks a ```nix block; it marks shell blocks only/,
    );
    expect(() => parseRunbook('<!-- runbook reboot -->', 'i.md')).toThrow(/i.md:1: unknown runbook annotation "reboot"/);
  });

  it('rejects an unclosed fence and a malformed key block with the line', () => {
    expect(() => parseRunbook('```sh runbook\nls', 'i.md')).toThrow(/i.md:1: fenced block is never closed/);
    expect(() => parseRunbook('```runbook provision-key\nkey.txt\n```', 'i.md')).toThrow(/i.md:1: provision-key must hold "ABSOLUTE_PATH MODE"/);
    expect(() => parseRunbook('```runbook reboot\n```', 'i.md')).toThrow(/unknown runbook block "reboot"/);
  });
});

describe('markedShellBlocks', () => {
  const doc = [
    '# Enrolling',
    '',
    '```sh enrol',
    'cp -r "tests/$FROM" "tests/$RECIPE"',
    '```',
    '',
    '```sh',
    'echo illustration',
    '```',
    '',
    '```sh enrol',
    'echo "$RECIPE" >> tests/enrolled',
    '```',
  ].join('\n');

  it('returns only the blocks with the marker, in order, with their lines', () => {
    expect(markedShellBlocks(doc, 'docs/enroll.md', 'enrol')).toEqual([
      { line: 3, script: 'cp -r "tests/$FROM" "tests/$RECIPE"' },
      { line: 11, script: 'echo "$RECIPE" >> tests/enrolled' },
    ]);
  });

  it('finds none in prose, and names an unclosed block with its line', () => {
    expect(markedShellBlocks('Copy a tree by hand.\n', 'docs/enroll.md', 'enrol')).toEqual([]);
    expect(() => markedShellBlocks('```sh enrol\necho x\n', 'docs/enroll.md', 'enrol')).toThrow('docs/enroll.md:1: fenced block is never closed');
  });
});
