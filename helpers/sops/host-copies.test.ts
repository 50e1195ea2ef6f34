import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError, SystemFailure } from '../common/errors.ts';
import { exec, type CommandResult } from '../common/exec.ts';
import { CommandNotStartedError, hostChannel, hostShellArgv, type HostChannel } from '../common/host.ts';
import { HostScanError } from '../common/host-scan.ts';
import { rawAnsweringHost } from '../common/testing/recording-host.ts';
import { rejectionOf } from '../common/testing/rejection.ts';
import { plantedForms } from '../common/testing/planted-forms.ts';
import { secretForms } from '../common/secret-forms.ts';
import { EXPLAINED_SECRET_PLACES, explainSecretFile, findSopsCopiesOnHost, hostForms, hostFormsText, unexplained } from './host-copies.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const TOKEN = 'f00dfeedcafe0123456789abcdef0123456789ab';
const KEY = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKq1x0yq3d3fFh1g0rO8Jm9Zk2d0Xz6m3c7sJw9uP4eB\n-----END PRIVATE KEY-----\n';
const VALUES = { forge_bot_token: TOKEN, wildcard_key: KEY, short_pin: '1234' };
const CONTAINER = 'a'.repeat(64);

/**
 * A host whose installed copies are `installed` (path → content), whose roots all exist, and
 * whose search prints `search`; every file hashes to the content given in `files`.
 */
function fakeHost(options: {
  installed?: Record<string, string>;
  search?: Partial<CommandResult>;
  files?: Record<string, string>;
}): HostChannel & { scripts: string[] } {
  const contents: Record<string, string> = {
    ...(options.installed ?? Object.fromEntries(Object.entries(VALUES).map(([name, value]) => [`/run/secrets/${name}`, value]))),
    ...options.files,
  };
  return rawAnsweringHost((script) => {
    const reply = (more: Partial<CommandResult>): CommandResult => ({ command: script, exitCode: 0, stdout: '', stderr: '', ...more });
    if (script.startsWith('for root in')) return reply({ stdout: '/etc\n/var\n' });
    if (script.startsWith('for f in')) {
      const asked = Object.keys(contents).filter((path) => script.includes(path));
      return reply({ stdout: asked.map((path) => `${sha256(contents[path]!)}  ${path}\n`).join('') });
    }
    // The host says which forms it made of each value it searched for, as the real script does.
    const made = Object.entries(VALUES)
      .filter(([name]) => script.includes(`/run/secrets/${name}`) && hostForms(name, VALUES[name as keyof typeof VALUES]).length > 0)
      .map(([name, value]) => `~${name} ${sha256(hostFormsText(hostForms(name, value)))}\n`)
      .join('');
    const search = options.search ?? { exitCode: 0 };
    return reply({ ...search, stdout: made + (search.stdout ?? '') });
  });
}

const ROOTS = { roots: ['/etc', '/var'] };

describe('hostForms', () => {
  it('makes every one-line form of a token, of a PEM key the body line but not the armour, and none of a short pin', () => {
    expect(hostForms('t', TOKEN).map(({ form }) => form.text)).toEqual(secretForms('t', TOKEN).map(({ text }) => text));
    const key = hostForms('k', KEY).map(({ form }) => form.text);
    expect(key).toContain(KEY.split('\n')[1]);
    expect(key.some((text) => text.includes('\n') || text.startsWith('-----'))).toBe(false);
    expect(hostForms('p', '1234')).toEqual([]);
  });
});

describe('findSopsCopiesOnHost', () => {
  it('finds a copy where sops-nix installs it: explained', async () => {
    const host = fakeHost({
      search: { stdout: `=forge_bot_token\n/run/secrets.d/3/forge_bot_token\n=wildcard_key\n` },
      files: { '/run/secrets.d/3/forge_bot_token': TOKEN },
    });
    const copies = await findSopsCopiesOnHost(host, VALUES, ROOTS);
    expect(copies.files).toEqual([
      { file: '/run/secrets.d/3/forge_bot_token', names: ['forge_bot_token'], forms: [], why: 'decrypted from sops at activation (sops-nix)' },
    ]);
    expect(copies.notSearched).toEqual([{ name: 'short_pin', why: 'no part of 6 characters or more (a line or a field of 12) to search for' }]);
  });

  it('finds a stray copy of a token: unexplained, named by file and secret name, never the value', async () => {
    const host = fakeHost({
      search: { stdout: `=forge_bot_token\n/var/lib/ccci/leftover-token\n=wildcard_key\n` },
      files: { '/var/lib/ccci/leftover-token': TOKEN },
    });
    const copies = await findSopsCopiesOnHost(host, VALUES, ROOTS);
    expect(copies.files).toEqual([{ file: '/var/lib/ccci/leftover-token', names: ['forge_bot_token'], forms: [], why: undefined }]);
    expect(JSON.stringify(copies)).not.toContain(TOKEN);
    // As C3 words the FAIL; the cause lab/sabotage.ts gives c3-stray-token-copy.
    const failure = `copies of sops values on ${host.name} outside the places that explain them: ${unexplained(copies.files).join('; ')}`;
    expect(failure).toMatch(/copies of sops values on \S+ outside the places that explain them: \/var\/lib\/ccci\/leftover-token \(forge_bot_token\)/);
    // The values reach the host only as the installed copies' paths: no script holds one.
    for (const script of host.scripts) for (const form of [...secretForms('t', TOKEN), ...secretForms('k', KEY)]) expect(script).not.toContain(form.text);
  });

  it('explains a Docker secret mount that equals a sops value, by the key it copies; one that merely holds it is not', async () => {
    const mount = `/var/lib/docker/containers/${CONTAINER}/mounts/secrets`;
    const host = fakeHost({
      search: { stdout: `=forge_bot_token\n${mount}/bundle\n=wildcard_key\n${mount}/ssl_key\n` },
      files: { [`${mount}/ssl_key`]: KEY, [`${mount}/bundle`]: `token=${TOKEN}\n` },
    });
    const copies = await findSopsCopiesOnHost(host, VALUES, ROOTS);
    expect(copies.files).toEqual([
      { file: `${mount}/bundle`, names: ['forge_bot_token'], forms: [], why: undefined },
      {
        file: `${mount}/ssl_key`,
        names: ['wildcard_key'],
        forms: [],
        why: "a Docker secret mounted into a container: dockerd's copy of sops value wildcard_key",
      },
    ]);
  });

  it('does not search with an installed copy that differs from git, and says so', async () => {
    const host = fakeHost({ installed: { '/run/secrets/forge_bot_token': 'rotated-but-not-in-git-000000', '/run/secrets/wildcard_key': KEY } });
    const copies = await findSopsCopiesOnHost(host, VALUES, ROOTS);
    expect(copies.notSearched.map(({ name }) => name)).toEqual(['short_pin', 'forge_bot_token']);
    expect(host.scripts.at(-1)).toContain('/run/secrets/wildcard_key');
    expect(host.scripts.at(-1)).not.toContain('/run/secrets/forge_bot_token');
  });

  it('is an ERROR, never "no copies", when the grep fails (exit 2), even with files printed', async () => {
    const host = fakeHost({ search: { exitCode: 2, stdout: '=forge_bot_token\n/etc/x\n', stderr: 'grep: /var/x: Input/output error\n' } });
    const error = await rejectionOf(findSopsCopiesOnHost(host, VALUES, ROOTS), HostScanError);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error).not.toBeInstanceOf(SystemFailure);
    expect(error.message).toMatch(/^on fake-host: .* failed \(exit 2\)/s);
  });

  it('is an ERROR naming grep when it is missing (127)', async () => {
    const host = fakeHost({ search: { exitCode: 127, stderr: 'sh: 1: grep: not found\n' } });
    const error = await rejectionOf(findSopsCopiesOnHost(host, VALUES, ROOTS), CommandNotStartedError);
    expect(error.message).toMatch(/^command not found on fake-host: `grep`/);
  });

  it('is an ERROR when the search prints something that is no name or file', async () => {
    await rejectionOf(findSopsCopiesOnHost(fakeHost({ search: { stdout: 'garbage\n' } }), VALUES, ROOTS), HostScanError);
  });
});

describe('explainSecretFile', () => {
  it("allows Docker's own swarm node key and certificates, and nothing else under /var/lib/docker by place", () => {
    expect(explainSecretFile('/var/lib/docker/swarm/certificates/swarm-node.key', sha256('own key'), VALUES)).toMatch(/Docker swarm's own node key/);
    expect(explainSecretFile('/var/lib/docker/swarm/certificates/swarm-root-ca.crt', undefined, VALUES)).toMatch(/Docker swarm's own/);
    expect(explainSecretFile('/var/lib/docker/swarm/certificates/other.key', sha256('own key'), VALUES)).toBeUndefined();
    expect(explainSecretFile(`/var/lib/docker/containers/${CONTAINER}/mounts/secrets/ssl_key`, sha256('not a sops value'), VALUES)).toBeUndefined();
    expect(explainSecretFile('/root/.cache/token', sha256(TOKEN), VALUES)).toBeUndefined();
  });

  it('gives every allowlisted place a reason', () => {
    expect(EXPLAINED_SECRET_PLACES.filter(({ why }) => why.length < 10)).toEqual([]);
  });
});

/** This machine's sh as a host: each script recorded in `scripts`, and run with `path` as PATH when given. */
function localShell({ scripts, path }: { scripts?: string[]; path?: string }): HostChannel {
  return hostChannel({
    name: 'local-sh',
    exec: async (script, options) => {
      scripts?.push(script);
      const [file, ...args] = hostShellArgv(script, options?.strict);
      return { ...(await exec(file!, args, path === undefined ? {} : { env: { ...process.env, PATH: path } })), command: script };
    },
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  });
}

describe('findSopsCopiesOnHost on a real shell', () => {
  const work = mkdtempSync(join(tmpdir(), 'host-copies-test-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const scripts: string[] = [];
  const localHost = localShell({ scripts });

  it('names each file by the values it holds, skips symlinks, and passes no value in argv', async () => {
    const installed = join(work, 'installed');
    const root = join(work, 'root');
    mkdirSync(installed, { recursive: true });
    mkdirSync(join(root, 'deep'), { recursive: true });
    for (const [name, value] of Object.entries(VALUES)) writeFileSync(join(installed, name), value);
    writeFileSync(join(root, 'deep', 'leftover'), `export TOKEN=${TOKEN}\n`);
    writeFileSync(join(root, 'both'), `${TOKEN}\n${KEY}`);
    writeFileSync(join(root, 'other.pem'), '-----BEGIN PRIVATE KEY-----\nAAAAnotthesamekeyatallAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n');
    // As /run/secrets points at /run/secrets.d/<n>: a link inside a root is not followed.
    symlinkSync(installed, join(root, 'secrets'));
    writeFileSync(join(root, 'nothing'), 'no secrets here, and 1234 is too short to count\n');
    const copies = await findSopsCopiesOnHost(localHost, VALUES, { roots: [root, join(work, 'absent')], installedDir: installed });
    expect(copies.files).toEqual([
      { file: join(root, 'both'), names: ['forge_bot_token', 'wildcard_key'], forms: ['forge_bot_token: whole value', 'wildcard_key: line 2'], why: undefined },
      { file: join(root, 'deep', 'leftover'), names: ['forge_bot_token'], forms: ['forge_bot_token: whole value'], why: undefined },
    ]);
    expect(copies.absent).toEqual([join(work, 'absent')]);
    for (const script of scripts) for (const form of [...secretForms('t', TOKEN), ...secretForms('k', KEY)]) expect(script).not.toContain(form.text);
  });

  it('reads no match as nothing found', async () => {
    const empty = join(work, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'file'), 'nothing\n');
    const copies = await findSopsCopiesOnHost(localHost, VALUES, { roots: [empty], installedDir: join(work, 'installed') });
    expect(copies.files).toEqual([]);
  });
});

describe('findSopsCopiesOnHost when a file vanishes during the scan', () => {
  const work = mkdtempSync(join(tmpdir(), 'host-copies-vanish-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const realGrep = execFileSync('sh', ['-c', 'command -v grep']).toString().trim();
  /** A grep that does its work, then complains as given and exits 2, as one does when a file it listed is gone or unreadable. */
  function shimmedHost(complaint: string): HostChannel {
    const shims = join(work, `shim-${complaint.replace(/\W+/g, '-')}`);
    mkdirSync(shims, { recursive: true });
    writeFileSync(
      join(shims, 'grep'),
      `#!/bin/sh\n[ "$1" = -qv ] && exec ${realGrep} "$@"\n${realGrep} "$@"; rc=$?\n[ "$rc" -le 1 ] || exit "$rc"\necho "grep: /run/user/0/gone: ${complaint}" >&2\nexit 2\n`,
      { mode: 0o755 },
    );
    return localShell({ path: `${shims}:${process.env.PATH}` });
  }

  it('takes a file gone by the time grep read it as gone, and still finds the copies that are there', async () => {
    const installed = join(work, 'installed');
    const root = join(work, 'root');
    mkdirSync(installed, { recursive: true });
    mkdirSync(root, { recursive: true });
    for (const [name, value] of Object.entries(VALUES)) writeFileSync(join(installed, name), value);
    writeFileSync(join(root, 'leftover'), `TOKEN=${TOKEN}\n`);
    const copies = await findSopsCopiesOnHost(shimmedHost('No such file or directory'), VALUES, { roots: [root], installedDir: installed });
    expect(copies.files.map(({ file, names }) => ({ file, names }))).toEqual([{ file: join(root, 'leftover'), names: ['forge_bot_token'] }]);
  });

  it('is an ERROR when grep could not read a file that is there: never read as nothing found', async () => {
    const error = await findSopsCopiesOnHost(shimmedHost('Permission denied'), VALUES, {
      roots: [join(work, 'root')],
      installedDir: join(work, 'installed'),
    }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(HostScanError);
    expect((error as Error).message).toMatch(/Permission denied/);
  });
});

describe('findSopsCopiesOnHost on a real shell, a canary in each form', () => {
  const work = mkdtempSync(join(tmpdir(), 'host-forms-test-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const scripts: string[] = [];
  const localHost = localShell({ scripts });
  const FORMS = plantedForms();

  it.each(FORMS.map((form, index) => ({ ...form, index })))(
    'finds a host file holding a canary planted as $name, naming the secret and the form, never the value',
    async ({ value, planted, index }) => {
      const installed = join(work, `installed-${index}`);
      const root = join(work, `root-${index}`);
      mkdirSync(installed, { recursive: true });
      mkdirSync(root, { recursive: true });
      writeFileSync(join(installed, 'canary'), value);
      writeFileSync(join(root, 'leftover.log'), `${planted}\n`);
      writeFileSync(join(root, 'clean.log'), 'nothing here\n');
      const copies = await findSopsCopiesOnHost(localHost, { canary: value }, { roots: [root], installedDir: installed });
      expect(copies.files.map(({ file }) => file)).toEqual([join(root, 'leftover.log')]);
      expect(copies.files[0]!.forms!.length).toBeGreaterThan(0);
      expect(unexplained(copies.files)[0]).toMatch(/leftover\.log \(canary\) as canary: /);
      for (const form of secretForms('canary', value)) {
        expect(JSON.stringify(copies)).not.toContain(form.text);
        expect(scripts.at(-1)).not.toContain(form.text);
      }
    },
  );
});
