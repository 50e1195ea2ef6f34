import { describe, expect, it } from 'vitest';
import { recordedComposition, recordedKeyProvisioning, recordedSizing, sameSize } from './decisions.ts';

const GiB = 2 ** 30;

describe('recordedSizing', () => {
  it('takes the size after the decision word, not the history before it', () => {
    const text = '# Decisions\n\n## cc-nix-test sizing\n\nResized 6 GB → 4 GB for Phase 1c. Decision: keep 4 GB (was 6 GB).\n';
    expect(recordedSizing(text, 'cc-nix-test')).toMatchObject({ size: '4 GB', bytes: 4e9, lineNumber: 5 });
  });

  it('lets a later decision supersede an earlier one', () => {
    const text = '- cc-nix-test: final sizing 4GiB\n- 2026-12-01: cc-nix-test restored to 6 GB after the test\n';
    expect(recordedSizing(text, 'cc-nix-test')).toMatchObject({ size: '6 GB', lineNumber: 2 });
  });

  it('reads a line under a sizing heading that does not repeat the name', () => {
    expect(recordedSizing('## Sizing\nWe decided on 4GiB.\n', 'cc-nix-test')?.bytes).toBe(4 * GiB);
  });

  it('records nothing for history alone, for another machine, or for a decision without a size', () => {
    expect(recordedSizing('cc-nix-test was resized 6 GB → 4 GB.\n', 'cc-nix-test')).toBeUndefined();
    expect(recordedSizing('## lichen-staging\nkeep 8 GB\n', 'cc-nix-test')).toBeUndefined();
    expect(recordedSizing('cc-nix-test: decision pending (promote the rebuilt VM?)\n', 'cc-nix-test')).toBeUndefined();
  });
});

describe('sameSize', () => {
  it('takes 4 GB in prose as 4GiB, and never 6 GB as 4GiB', () => {
    expect(sameSize(4e9, 4 * GiB)).toBe(true);
    expect(sameSize(6e9, 4 * GiB)).toBe(false);
    expect(sameSize(3 * GiB, 4 * GiB)).toBe(false);
  });
});

describe('recordedComposition', () => {
  it('reads the choice after the decision word, under a heading about the instance repo', () => {
    const text = '## Linkage of the instance repo\n\nThe seed recommends a flake input. Decision: the git submodule `secrets/`, one checkout.\n';
    expect(recordedComposition(text)).toMatchObject({ composition: 'submodule', lineNumber: 3 });
    expect(recordedComposition('- Decided: the instance repo is the flake input `instance`.\n')?.composition).toBe('input');
  });

  it('records nothing for a mention without a decision, or a decision about something else', () => {
    expect(recordedComposition('## Linkage\nA flake input or a submodule: still open.\n')).toBeUndefined();
    expect(recordedComposition('## Sizing\nDecision: keep 4 GB, no submodule involved.\n')).toBeUndefined();
  });
});

describe('recordedKeyProvisioning', () => {
  it("reads the recovery key as-is, or a key of the host's own, after the decision word", () => {
    const text = '## Bootstrap key\n\nThe seed weighs two ways. Decision: provision the off-box recovery age key to the host, as is.\n';
    expect(recordedKeyProvisioning(text)).toMatchObject({ provisioning: 'recovery', lineNumber: 3 });
    expect(recordedKeyProvisioning('- Bootstrap key: decided on a per-host key; the secrets are re-encrypted to it.\n')?.provisioning).toBe('per-host');
    expect(recordedKeyProvisioning("## Key provisioning\nChosen: each host's own key, instead of the recovery key.\n")?.provisioning).toBe('per-host');
  });

  it('lets a later entry supersede, and records nothing for an open question or another decision', () => {
    expect(recordedKeyProvisioning('## Bootstrap key\nDecision: the recovery key.\nRevisited 2026-12: decided on a per-host key.\n')).toMatchObject({
      provisioning: 'per-host',
      lineNumber: 3,
    });
    expect(recordedKeyProvisioning('## Bootstrap key\nThe recovery key, or a per-host key: open.\n')).toBeUndefined();
    expect(recordedKeyProvisioning('## Sizing\nDecision: keep cc-nix-test at 4 GB.\n')).toBeUndefined();
  });
});
