import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { exec, expectSuccess, succeed, type CommandResult } from '../common/exec.ts';
import type { HostChannel } from '../common/host.ts';
import {
  NixBuildError,
  OFFLINE_NIX_CONFIG,
  bootedSystem,
  buildToplevel,
  buildToplevelFromCleanClone,
  closure,
  closureHash,
  compareClosures,
  currentSystem,
  decodeNix32,
  diffClosures,
  diffClosuresOnHost,
  formatClosureDiff,
  normaliseHash,
  parsePathInfo,
  type Closure,
} from './index.ts';

const offline = { nixConfig: OFFLINE_NIX_CONFIG };
const GIT_ENV = {
  GIT_AUTHOR_NAME: 'nix test',
  GIT_AUTHOR_EMAIL: 'nix@test.invalid',
  GIT_COMMITTER_NAME: 'nix test',
  GIT_COMMITTER_EMAIL: 'nix@test.invalid',
  // file:// submodules are refused by default since git 2.38.1; nix's own git needs it too.
  GIT_CONFIG_COUNT: '1',
  GIT_CONFIG_KEY_0: 'protocol.file.allow',
  GIT_CONFIG_VALUE_0: 'always',
};

// --- pure parsing -------------------------------------------------------------------------

const A = '/nix/store/07d3k6rg1812d2jdx3g5jrdhlkggzrg4-nixos-system-cc-ci';
const DEP = '/nix/store/p66jlz925hmn5yy1xdhm1sfni5rdmr92-dep-1.0';
const DEP_SRI = 'sha256-N7D8g9s08ghTD491fiTMwACK7pAkfWQGz3m0xQf8Zos=';
// The same hash as `nix hash to-base32` / `to-base16` print it.
const DEP_NIX32 = 'sha256:12v6zh3wbd3rrw368z94j3p8l060rhj7wxcg1x9hiwilvf1zrc1p';
const DEP_HEX = 'sha256:37b0fc83db34f208530f8f757e24ccc0008aee90247d6406cf79b4c507fc668b';
const TOP_SRI = 'sha256-gHeLibqoj5E67tSz/6y9NxLO3iDWJGV/UJdm4/aYa60=';

// Verbatim from Nix 2.8 on this machine.
const ARRAY_SHAPE = JSON.stringify([
  {
    path: A,
    narHash: TOP_SRI,
    narSize: 560,
    references: [DEP],
    deriver: '/nix/store/608ks801vb0z7mkp5p689n3f73im2ghc-nixos-system-cc-ci.drv',
    registrationTime: 1795634848,
    ultimate: true,
  },
  {
    path: DEP,
    narHash: DEP_SRI,
    narSize: 288,
    references: [],
    deriver: '/nix/store/zy7lgyqq715mmhsfiy2d2lp3qvfjss47-dep-1.0.drv',
    registrationTime: 1795634848,
    ultimate: true,
  },
]);
// Nix ≥ 2.19: keyed by path, nulls where 2.8 had empty fields.
const OBJECT_SHAPE = JSON.stringify({
  [DEP]: { ca: null, deriver: null, narHash: DEP_SRI, narSize: 288, references: [], registrationTime: 1, signatures: [], ultimate: true },
  [A]: { ca: null, deriver: null, narHash: TOP_SRI, narSize: 560, references: [DEP], registrationTime: 1, signatures: [], ultimate: true },
});

describe('parsePathInfo', () => {
  it('reads the array shape and the object shape to the same entries', () => {
    const fromArray = parsePathInfo(ARRAY_SHAPE);
    const fromObject = parsePathInfo(OBJECT_SHAPE);
    expect(fromArray).toEqual(fromObject);
    expect(fromArray.map((entry) => entry.path)).toEqual([A, DEP]);
    expect(fromArray[0]).toEqual({ path: A, narHash: TOP_SRI, narSize: 560, references: [DEP] });
  });

  it('reads base-name keys and references with a storeDir field', () => {
    const base = (path: string) => path.slice('/nix/store/'.length);
    const parsed = parsePathInfo(
      JSON.stringify({ [base(A)]: { narHash: TOP_SRI, narSize: 560, references: [base(DEP)], storeDir: '/nix/store', version: 2 } }),
    );
    expect(parsed).toEqual([{ path: A, narHash: TOP_SRI, narSize: 560, references: [DEP] }]);
  });

  it('normalises old base-32 and hex NAR hashes to SRI, so closures from two Nix versions compare', () => {
    expect(normaliseHash(DEP_NIX32)).toBe(DEP_SRI);
    expect(normaliseHash(DEP_HEX)).toBe(DEP_SRI);
    expect(normaliseHash({ algorithm: 'sha256', format: 'base64', hash: DEP_SRI.slice(7) })).toBe(DEP_SRI);
    expect(decodeNix32(DEP_NIX32.slice(7), 32).toString('hex')).toBe(DEP_HEX.slice(7));
    const old = parsePathInfo(JSON.stringify([{ path: DEP, narHash: DEP_NIX32, narSize: 288, references: [] }]));
    expect(old[0]!.narHash).toBe(DEP_SRI);
  });

  it('refuses invalid paths in either shape, naming them', () => {
    const missing = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo';
    expect(() => parsePathInfo(JSON.stringify([{ path: missing, valid: false }]))).toThrow(new RegExp(`not valid in the store: ${missing}`));
    expect(() => parsePathInfo(JSON.stringify({ [missing]: null }))).toThrow(HarnessError);
    expect(() => parsePathInfo('error: nope')).toThrow(/did not print JSON/);
    expect(() => parsePathInfo('42')).toThrow(/neither an array nor an object/);
    expect(() => parsePathInfo(JSON.stringify([{ path: DEP, narHash: 'md5:zz', narSize: 1 }]))).toThrow(/unrecognised hash|wrong length|base-32/);
  });
});

describe('compareClosures, closureHash, formatClosureDiff', () => {
  const entries = parsePathInfo(ARRAY_SHAPE);
  const a: Closure = { root: A, where: 'local', entries };

  it('finds a closure identical to itself, whatever order and source', () => {
    const b: Closure = { root: A, where: 'host', entries: [...parsePathInfo(OBJECT_SHAPE)].reverse() };
    const diff = compareClosures(a, b);
    expect(diff).toMatchObject({ identical: true, onlyInA: [], onlyInB: [], narHashDiffers: [] });
    expect(closureHash(a)).toBe(closureHash(b));
    expect(closureHash(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(formatClosureDiff(diff, { labels: ['clean clone', 'cc-nix-test'] })).toContain('identical: same root');
  });

  it('reports a path that is the same by name but not by bytes', () => {
    const tampered = entries.map((entry) => (entry.path === DEP ? { ...entry, narHash: TOP_SRI } : entry));
    const diff = compareClosures(a, { root: A, where: 'host', entries: tampered });
    expect(diff.identical).toBe(false);
    expect(diff.narHashDiffers).toEqual([{ path: DEP, a: DEP_SRI, b: TOP_SRI }]);
    expect(closureHash(a)).not.toBe(closureHash(tampered));
    const text = formatClosureDiff(diff, { labels: ['built', 'running'] });
    expect(text).toContain('same root path');
    expect(text).toContain(`NAR hash differs (1):\n  ${DEP}: built ${DEP_SRI}, running ${TOP_SRI}`);
  });

  it('lists paths on one side only, and caps long lists', () => {
    const other = '/nix/store/zyx8y0dgl4q40lzljgdvfczlh9nxpr5m-nixos-system-cc-ci';
    const b: Closure = { root: other, where: 'host', entries: [{ path: other, narHash: TOP_SRI, narSize: 1, references: [] }] };
    const diff = compareClosures(a, b);
    expect(diff).toMatchObject({ identical: false, onlyInA: [A, DEP], onlyInB: [other] });
    const text = formatClosureDiff(diff, { max: 1, diffClosures: 'dep: 1.0 → ∅' });
    expect(text).toContain('root paths differ');
    expect(text).toContain('only in A (2):');
    expect(text).toContain('… and 1 more');
    expect(text).toContain('nix store diff-closures:\ndep: 1.0 → ∅');
  });
});

// --- real builds --------------------------------------------------------------------------

/** A flake whose toplevel is a plain derivation: nixpkgs cannot be reached here. */
function flakeNix(marker: string, depVersion: string, domainExpr = '"none"', instanceInput?: string): string {
  return `{
  ${instanceInput ? `inputs.instance.url = "${instanceInput}";` : ''}
  outputs = { self${instanceInput ? ', instance' : ''} }: let
    mk = name: script: derivation { inherit name; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; system = "x86_64-linux"; args = [ "-c" script ]; };
    dep = mk "ccci-test-dep-${depVersion}" "mkdir -p $out; echo ${depVersion} > $out/v";
    domain = ${domainExpr};
  in {
    nixosConfigurations.cc-ci.config.system.build.toplevel =
      mk "nixos-system-cc-ci" "mkdir -p $out; ln -s \${dep} $out/dep; echo \${domain} > $out/domain; echo ${marker} > $out/marker";
  };
}
`;
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await succeed('git', args, { cwd, env: { ...process.env, ...GIT_ENV } })).stdout.trim();
}

async function commitAll(dir: string, message: string): Promise<string> {
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-qm', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/** Runs host commands on this machine: the closure-on-host path, against a real store. */
function localHost(): HostChannel {
  const run = (script: string) => exec('sh', ['-c', script], { env: { ...process.env, NIX_CONFIG: OFFLINE_NIX_CONFIG } });
  return {
    name: 'local-sh',
    transport: 'local sh',
    exec: run,
    succeed: async (script) => expectSuccess(await run(script)),
    fail: async () => {
      throw new Error('unused');
    },
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  };
}

describe('builds and closures against the real Nix on this machine', () => {
  let work: string;
  const marker = `m${process.pid}x${Date.now()}`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nix-test-'));
    for (const [key, value] of Object.entries(GIT_ENV)) vi.stubEnv(key, value);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await rm(work, { recursive: true, force: true });
  });

  it('builds a toplevel, reads its closure locally and on a "host", and compares', async () => {
    const dir = join(work, 'plain');
    await git(work, 'init', '-q', dir);
    await writeFile(join(dir, 'flake.nix'), flakeNix(marker, '1.0'));
    await commitAll(dir, 'one');
    const path = await buildToplevel({ flakeRef: `git+file://${dir}`, ...offline });
    expect(path).toMatch(/^\/nix\/store\/[0-9a-z]{32}-nixos-system-cc-ci$/);
    // A configuration name gives the same attribute.
    expect(await buildToplevel({ flakeRef: `git+file://${dir}`, configuration: 'cc-ci', ...offline })).toBe(path);

    const local = await closure(path, offline);
    expect(local.root).toBe(path);
    // A link to the store path (like ./result) reads the same closure.
    const link = join(work, 'result');
    await symlink(path, link);
    expect(await closure(link, offline)).toEqual(local);
    expect(local.entries.map((entry) => entry.path.replace(/^.{44}/, ''))).toEqual(expect.arrayContaining(['nixos-system-cc-ci', 'ccci-test-dep-1.0']));
    expect(local.entries).toHaveLength(2);
    for (const entry of local.entries) expect(entry.narHash).toMatch(/^sha256-[A-Za-z0-9+/]{43}=$/);

    const host = localHost();
    const remote = await closure(host, { path });
    expect(remote.where).toBe('local-sh');
    expect(compareClosures(local, remote).identical).toBe(true);
    expect(closureHash(remote)).toBe(closureHash(local));

    // A second revision: the dep changes version, the root changes path.
    await writeFile(join(dir, 'flake.nix'), flakeNix(marker, '1.1'));
    await commitAll(dir, 'two');
    const next = await buildToplevel({ flakeRef: `git+file://${dir}`, ...offline });
    expect(next).not.toBe(path);
    const diff = compareClosures(local, await closure(next, offline));
    expect(diff.identical).toBe(false);
    expect(diff.onlyInA.map((p) => p.slice(44))).toEqual(expect.arrayContaining(['ccci-test-dep-1.0', 'nixos-system-cc-ci']));
    expect(diff.onlyInB.map((p) => p.slice(44))).toEqual(expect.arrayContaining(['ccci-test-dep-1.1', 'nixos-system-cc-ci']));
    // diff-closures exists in 2.8 but only sees versions and sizes; the root's change is invisible to it.
    const summary = await diffClosures(path, next, offline);
    expect(summary).toContain('ccci-test-dep: 1.0 → 1.1');
    expect(summary).not.toContain('nixos-system-cc-ci');
    expect(await diffClosures(path, '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-missing', offline)).toBeUndefined();
  });

  it('fails a broken build with a NixBuildError carrying the stderr tail', async () => {
    const dir = join(work, 'broken');
    await git(work, 'init', '-q', dir);
    await writeFile(join(dir, 'flake.nix'), flakeNix(marker, '1.0'));
    await commitAll(dir, 'one');
    const error = await buildToplevel({ flakeRef: `git+file://${dir}`, configuration: 'nope', ...offline }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NixBuildError);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as NixBuildError).message).toContain('nixosConfigurations.nope.config.system.build.toplevel');
    expect((error as NixBuildError).stderrTail).toMatch(/does not provide attribute|error:/);
    await expect(buildToplevel({ flakeRef: `${dir}#x`, ...offline })).rejects.toThrow(/must not carry a fragment/);
    await expect(closure('/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-missing', offline)).rejects.toThrow(/is not valid/);
  });

  it('builds from a clean clone with the instance as a submodule (only with submodules) or as a flake input', async () => {
    const instance = join(work, 'instance');
    await git(work, 'init', '-q', instance);
    await writeFile(join(instance, 'domain'), `ci-${marker}.test`);
    await writeFile(join(instance, 'flake.nix'), '{ outputs = { self }: { domain = builtins.readFile ./domain; }; }\n');
    await commitAll(instance, 'instance');

    // Submodule layout, as deployed: secrets/ inside the base repo.
    const base = join(work, 'base-submodule');
    await git(work, 'init', '-q', base);
    await git(base, 'submodule', '--quiet', 'add', `file://${instance}`, 'secrets');
    await writeFile(join(base, 'flake.nix'), flakeNix(marker, '1.0', 'builtins.readFile ./secrets/domain'));
    const baseCommit = await commitAll(base, 'base with submodule');
    // Uncommitted work in the checkout must not count: a clean clone never sees it.
    await writeFile(join(base, 'flake.nix'), flakeNix('dirty', '9.9', 'builtins.readFile ./secrets/domain'));

    const built = await buildToplevelFromCleanClone(`file://${base}`, { submodules: true, ...offline });
    expect(built.commit).toBe(baseCommit);
    expect(built.installable).toMatch(/^git\+file:\/\/.+\?submodules=1#nixosConfigurations\.cc-ci\.config\.system\.build\.toplevel$/);
    const domain = await exec('cat', [join(built.path, 'domain')]);
    expect(domain.stdout.trim()).toBe(`ci-${marker}.test`);
    const marked = await exec('cat', [join(built.path, 'marker')]);
    expect(marked.stdout.trim()).toBe(marker);
    expect(built.reused).toBeUndefined();
    // The same commit again, in this process: not built again while its output is in the store.
    const again = await buildToplevelFromCleanClone(`file://${base}`, { submodules: true, ...offline });
    expect(again).toMatchObject({ path: built.path, commit: baseCommit, builtAt: built.builtAt, reused: true });
    // A new commit is built afresh.
    const moved = await commitAll(base, 'base, changed');
    const rebuilt = await buildToplevelFromCleanClone(`file://${base}`, { submodules: true, ...offline });
    expect([rebuilt.commit, rebuilt.reused, rebuilt.path === built.path]).toEqual([moved, undefined, false]);
    // Without ?submodules=1 the secrets/ tree is empty, so the build cannot read the domain.
    await expect(buildToplevelFromCleanClone(`file://${base}`, { submodules: false, ...offline })).rejects.toThrow(/secrets\/domain/);

    // Flake-input layout: the instance pinned in flake.lock.
    const viaInput = join(work, 'base-input');
    await git(work, 'init', '-q', viaInput);
    await writeFile(join(viaInput, 'flake.nix'), flakeNix(marker, '1.0', 'instance.domain', `git+file://${instance}`));
    await git(viaInput, 'add', '-A');
    expectSuccess(
      await exec('nix', ['--extra-experimental-features', 'nix-command flakes', 'flake', 'lock'], {
        cwd: viaInput,
        env: { ...process.env, NIX_CONFIG: OFFLINE_NIX_CONFIG },
      }),
    );
    await commitAll(viaInput, 'base with input');
    const viaInputBuilt = await buildToplevelFromCleanClone(`file://${viaInput}`, { submodules: false, ...offline });
    expect((await exec('cat', [join(viaInputBuilt.path, 'domain')])).stdout.trim()).toBe(`ci-${marker}.test`);
  });

  it('reads /run/current-system through the host channel', async () => {
    const canned = (stdout: string): HostChannel => ({
      ...localHost(),
      name: 'fake',
      succeed: async (script) => ({ command: script, exitCode: 0, stdout, stderr: '' }),
    });
    await expect(currentSystem(canned(`${A}\n`))).resolves.toBe(A);
    await expect(currentSystem(canned('/run/current-system\n'))).rejects.toThrow(/does not resolve to a store path/);
  });
});

/** A host that answers every line with `reply` (or throws it), recording the lines. */
function scripted(reply: Partial<CommandResult> | Error): HostChannel & { scripts: string[] } {
  const scripts: string[] = [];
  const run = async (script: string): Promise<CommandResult> => {
    scripts.push(script);
    if (reply instanceof Error) throw reply;
    return { command: script, exitCode: 0, stdout: '', stderr: '', ...reply };
  };
  return {
    name: 'fake',
    transport: 'fake',
    scripts,
    exec: run,
    succeed: run,
    fail: run,
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  };
}

describe('bootedSystem', () => {
  it('reads /run/booted-system where the host has one', async () => {
    await expect(bootedSystem(scripted({ stdout: `${A}\n` }))).resolves.toBe(A);
  });

  it('is undefined where the host has none (a container), not an error', async () => {
    const host = scripted({ stdout: '' });
    await expect(bootedSystem(host)).resolves.toBeUndefined();
    expect(host.scripts[0]).toMatch(/^if \[ -e \/run\/booted-system \]/);
  });

  it('is an ERROR when the link resolves to no store path', async () => {
    await expect(bootedSystem(scripted({ stdout: '/run/booted-system\n' }))).rejects.toThrow(/\/run\/booted-system on fake does not resolve to a store path/);
  });
});

describe('diffClosuresOnHost and the closure difference it adds to', () => {
  const diff = compareClosures(
    { root: A, where: 'local', entries: parsePathInfo(ARRAY_SHAPE) },
    { root: A, where: 'fake', entries: parsePathInfo(ARRAY_SHAPE).map((entry) => (entry.path === DEP ? { ...entry, narHash: TOP_SRI } : entry)) },
  );

  it("gives the host's output, and formatClosureDiff shows it under where it ran", async () => {
    const host = scripted({ stdout: 'dep: 1.0 → 1.1, +12.0 KiB\n' });
    const tool = await diffClosuresOnHost(host, A, DEP);
    expect(tool).toEqual({ output: 'dep: 1.0 → 1.1, +12.0 KiB', where: 'on fake' });
    expect(host.scripts[0]).toBe(`nix --extra-experimental-features 'nix-command flakes' store diff-closures '${A}' '${DEP}'`);
    const text = formatClosureDiff(diff, { labels: ['booted', 'current'], diffClosures: tool });
    expect(text).toContain(`NAR hash differs (1):\n  ${DEP}: booted ${DEP_SRI}, current ${TOP_SRI}`);
    expect(text).toContain('nix store diff-closures (on fake):\ndep: 1.0 → 1.1, +12.0 KiB');
  });

  it('says a Nix without the command lacks it, and the difference is still shown', async () => {
    const tool = await diffClosuresOnHost(
      scripted({ exitCode: 1, stderr: "error: 'store' is not a recognised command\nTry 'nix --help' for more information.\n" }),
      A,
      DEP,
    );
    expect(tool).toEqual({ unavailable: 'the Nix on fake has no `nix store diff-closures`' });
    const text = formatClosureDiff(diff, { labels: ['booted', 'current'], diffClosures: tool });
    expect(text).toContain('NAR hash differs (1)');
    expect(text).toContain('nix store diff-closures: not shown (the Nix on fake has no `nix store diff-closures`)');
  });

  it('names any other failure, and a host without nix, without throwing: the verdict never rests on it', async () => {
    expect(await diffClosuresOnHost(scripted({ exitCode: 1, stderr: "error: path '/nix/store/x' is not valid\n" }), A, DEP)).toEqual({
      unavailable: "`nix store diff-closures` on fake exited 1: error: path '/nix/store/x' is not valid",
    });
    expect(await diffClosuresOnHost(scripted(new HarnessError('command not found on fake: `nix`, exit 127')), A, DEP)).toEqual({
      unavailable: '`nix store diff-closures` on fake could not run: command not found on fake: `nix`, exit 127',
    });
  });
});
