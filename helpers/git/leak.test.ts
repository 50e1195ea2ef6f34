import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { succeed } from '../common/exec.ts';
import { countOccurrences, describeLeak, scanString } from './leak.ts';

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'leak test',
  GIT_AUTHOR_EMAIL: 'leak@test.invalid',
  GIT_COMMITTER_NAME: 'leak test',
  GIT_COMMITTER_EMAIL: 'leak@test.invalid',
  GIT_CONFIG_COUNT: '1',
  GIT_CONFIG_KEY_0: 'protocol.file.allow',
  GIT_CONFIG_VALUE_0: 'always',
};

async function git(cwd: string, args: string[], input?: string): Promise<string> {
  return (await succeed('git', args, { cwd, input, env: { ...process.env, ...GIT_ENV } })).stdout.trim();
}

// Fresh values per run, so nothing in this file could ever match by accident.
const token = () => randomBytes(18).toString('base64url');
const RPC_SECRET = `rpc-${token()}`;
const MESSAGE_SECRET = `msg-${token()}`;
const TAG_SECRET = `tag-${token()}`;
const NEVER_COMMITTED = `absent-${token()}`;
const DOMAIN = `ci-${randomBytes(4).toString('hex')}.example.net`;
const pemBody = Array.from({ length: 6 }, () => randomBytes(48).toString('base64'));
const PEM = ['-----BEGIN PRIVATE KEY-----', ...pemBody, '-----END PRIVATE KEY-----', ''].join('\n');
// Same shape, different key: shares only the armour lines with PEM.
const OTHER_PEM = ['-----BEGIN PRIVATE KEY-----', ...pemBody.map(() => randomBytes(48).toString('base64')), '-----END PRIVATE KEY-----'].join('\n');

const COMMITS = 1200;
const PLANTED_AT = 400;
const REMOVED_AT = 450;

function data(text: string): string {
  return `data ${Buffer.byteLength(text)}\n${text}\n`;
}

/** A fast-import stream: 1,200 commits, a secret file alive for 50 of them, a side branch and a tag. */
function history(): string {
  const out: string[] = [];
  for (let i = 1; i <= COMMITS; i++) {
    out.push('commit refs/heads/main\n', `mark :${i}\n`, `committer t <t@t.invalid> ${1_700_000_000 + i} +0000\n`, data(`change ${i}`));
    out.push(`M 644 inline docs/file-${i % 25}.md\n`, data(`revision ${i}\n`));
    if (i === 1) out.push('M 644 inline README.md\n', data('generic base repo\n'));
    if (i === PLANTED_AT) {
      // A YAML block scalar re-indents the PEM: the whole value is not in the file, its lines are.
      const indented = PEM.trimEnd()
        .split('\n')
        .map((line) => `    ${line}`)
        .join('\n');
      out.push('M 644 inline secrets/prod.yaml\n', data(`drone_rpc_secret: ${RPC_SECRET}\nbackup: ${RPC_SECRET}\nwildcard_key: |\n${indented}\n`));
    }
    if (i === PLANTED_AT + 10) out.push(`M 644 inline hosts/${DOMAIN}.nix\n`, data('{ }\n'));
    if (i === REMOVED_AT) out.push('D secrets/prod.yaml\n', `D hosts/${DOMAIN}.nix\n`);
  }
  out.push('commit refs/heads/side\n', `committer t <t@t.invalid> ${1_800_000_000} +0000\n`, data(`oops ${MESSAGE_SECRET}`), `from :${COMMITS - 100}\n`);
  out.push('M 644 inline pem.txt\n', data(PEM));
  out.push('tag v1\n', `from :${COMMITS}\n`, `tagger t <t@t.invalid> ${1_800_000_001} +0000\n`, data(`release ${TAG_SECRET}`));
  return out.join('');
}

describe('countOccurrences over a 1,200-commit history', () => {
  let work: string;
  let repo: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'leak-test-'));
    repo = join(work, 'repo');
    await git(work, ['init', '-q', repo]);
    await git(repo, ['fast-import', '--quiet'], history());
    await git(repo, ['update-ref', 'HEAD', 'refs/heads/main']);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('finds a secret that was planted and later removed, and counts 0 for absent values', async () => {
    expect(Number(await git(repo, ['rev-list', '--all', '--count']))).toBe(COMMITS + 1);
    const result = await countOccurrences(repo, [RPC_SECRET, NEVER_COMMITTED, PEM, OTHER_PEM]);
    const rpc = result.get(0)!;
    // Twice in one file; the file lived in commits 400..449.
    expect(rpc).toMatchObject({ count: 2, objects: 1, commits: REMOVED_AT - PLANTED_AT });
    expect(rpc.where[0]!.path).toBe('secrets/prod.yaml');
    expect(rpc.where[0]!.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(result.get(1)).toEqual({ count: 0, commits: 0, objects: 0, forms: [], where: [], scanned: { commits: COMMITS + 1, objects: expect.any(Number) } });
    expect(describeLeak('absent', result.get(1)!)).toMatch(/^absent: 0 matches \(1201 commits, \d+ objects scanned\)$/);
    expect(result.get(3)!.count).toBe(0);
  });

  it('finds a multi-line value whole (side branch) and re-indented line by line (YAML)', async () => {
    const pem = (await countOccurrences(repo, [PEM])).get(0)!;
    expect(pem.objects).toBe(2);
    // 50 commits on main with the YAML, plus the side-branch commit with pem.txt.
    expect(pem.commits).toBe(REMOVED_AT - PLANTED_AT + 1);
    expect(pem.where.map((place) => place.path)).toEqual(expect.arrayContaining(['pem.txt', 'secrets/prod.yaml']));
  });

  it('searches commit and tag messages and file names too', async () => {
    const result = await countOccurrences(repo, { message: MESSAGE_SECRET, tag: TAG_SECRET });
    expect(result.get('message')).toMatchObject({ count: 1, commits: 1, where: [{ path: '(commit message)' }] });
    expect(result.get('tag')).toMatchObject({ count: 1, commits: 0, where: [{ path: '(annotated tag message)' }] });
    const domain = await scanString(repo, DOMAIN.toUpperCase(), { ignoreCase: true });
    expect(domain.commits).toBe(REMOVED_AT - PLANTED_AT - 10);
    expect(domain.where[0]!.path).toBe('hosts/ (directory listing)');
    expect((await scanString(repo, DOMAIN.toUpperCase())).count).toBe(0);
  });

  it('never prints a value, in output or in errors', async () => {
    const stdout = vi.spyOn(process.stdout, 'write');
    const stderr = vi.spyOn(process.stderr, 'write');
    try {
      const result = await countOccurrences(repo, new Map([['drone_rpc_secret', RPC_SECRET]]));
      expect(describeLeak('drone_rpc_secret', result.get('drone_rpc_secret')!)).toMatch(
        /^drone_rpc_secret: 2 match\(es\) as whole value in 1 object\(s\), 50 commit\(s\) \(1201 commits, \d+ objects scanned\); e\.g\. [0-9a-f]{12}:secrets\/prod\.yaml/,
      );
      const errors = await Promise.all([
        countOccurrences(join(work, 'nowhere'), [RPC_SECRET]).catch((e: unknown) => e),
        countOccurrences(repo, ['abc', RPC_SECRET]).catch((e: unknown) => e),
        countOccurrences(repo, { short: 'x  ' }).catch((e: unknown) => e),
      ]);
      for (const error of errors) {
        expect(error).toBeInstanceOf(HarnessError);
        expect((error as Error).message).not.toContain(RPC_SECRET);
      }
      expect((errors[1] as Error).message).toBe('needle #0 is too short to search for (3 characters, at least 6 needed)');
      expect((errors[2] as Error).message).toContain('needle "short" is too short');
      const printed = [...stdout.mock.calls, ...stderr.mock.calls].map((call) => String(call[0])).join('');
      expect(printed).not.toContain(RPC_SECRET);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('refuses a shallow clone, whose history is incomplete, and a repo with nothing to scan', async () => {
    const empty = join(work, 'empty');
    await git(work, ['init', '-q', empty]);
    await expect(countOccurrences(empty, [RPC_SECRET])).rejects.toThrow(/no commits reachable from any ref/);
    const shallow = join(work, 'shallow');
    await git(work, ['clone', '-q', '--depth', '1', '--branch', 'main', `file://${repo}`, shallow]);
    await expect(countOccurrences(shallow, [RPC_SECRET])).rejects.toThrow(/shallow clone/);
  });
});

describe('countOccurrences on a repo with a submodule', () => {
  it('skips the gitlink and scans the superproject (the instance repo is scanned on its own)', async () => {
    const work = await mkdtemp(join(tmpdir(), 'leak-sub-'));
    try {
      const instance = join(work, 'instance');
      const base = join(work, 'base');
      await git(work, ['init', '-q', instance]);
      await writeFile(join(instance, 'domain'), DOMAIN);
      await git(instance, ['add', '-A']);
      await git(instance, ['commit', '-qm', 'instance']);
      await git(work, ['init', '-q', base]);
      await git(base, ['submodule', '--quiet', 'add', `file://${instance}`, 'secrets']);
      await git(base, ['commit', '-qm', 'base']);
      expect((await scanString(base, DOMAIN)).count).toBe(0);
      expect(await scanString(instance, DOMAIN)).toMatchObject({ count: 1, commits: 1, where: [{ path: 'domain' }] });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
