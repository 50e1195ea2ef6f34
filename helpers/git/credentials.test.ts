/** Operator-side clones get credentials from a file or a URL's userinfo, and git never sees them in argv. */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../common/errors.ts';
import { credentialForms } from '../common/testing/leak-scan.ts';
import { forgetSecrets } from '../common/redact.ts';
import { cloneRepo, operatorGitEnv } from './index.ts';
import { startAuthGitServer, type AuthGitServer } from './testing/auth-server.ts';

const USER = 'ci-bot';
const TOKEN = 'gitea-Token_7f3e9a';
const FORMS = credentialForms(USER, TOKEN);

let server: AuthGitServer;
let dir: string;
const saved = { ...process.env };

beforeAll(async () => {
  server = await startAuthGitServer({ username: USER, password: TOKEN });
  dir = await mkdtemp(join(tmpdir(), 'accept-git-creds-'));
  // Records the argv of every top-level git the harness runs, then runs the real one.
  await writeFile(join(dir, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> "${join(dir, 'argv.log')}"\nexec /usr/bin/git "$@"\n`);
  await chmod(join(dir, 'git'), 0o755);
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  process.env = { ...saved };
  forgetSecrets();
  await rm(join(dir, 'argv.log'), { force: true });
});

function withArgvLog(env: Record<string, string>): void {
  process.env = { ...saved, PATH: `${dir}:${saved.PATH}`, ...env };
}

async function argv(): Promise<string> {
  return readFile(join(dir, 'argv.log'), 'utf8').catch(() => '');
}

describe('cloneRepo against a server that demands Basic auth', () => {
  it('without credentials the clone is an ERROR that names the setting, not a prompt that hangs', async () => {
    withArgvLog({});
    const error = await cloneRepo(server.repoUrl, { setting: 'ACCEPT_BASE_REPO' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as Error).message).toContain('ACCEPT_BASE_REPO');
  });

  it('with ACCEPT_GIT_CREDENTIALS_FILE it clones, sending the header, and the token is in no argv', async () => {
    const file = join(dir, 'credentials');
    await writeFile(file, `https://other:unused-token@git.example.net\n${server.url.replace('http://', `http://${USER}:${TOKEN}@`)}\n`, { mode: 0o600 });
    withArgvLog({ ACCEPT_GIT_CREDENTIALS_FILE: file });
    await using clone = await cloneRepo(server.repoUrl, { setting: 'ACCEPT_BASE_REPO' });
    expect(clone.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(server.seen).toContain(`Basic ${Buffer.from(`${USER}:${TOKEN}`).toString('base64')}`);
    const args = await argv();
    expect(args).toContain('clone');
    for (const form of FORMS) expect(args).not.toContain(form);
  });

  it("with the token in the URL's userinfo it clones too, and neither argv nor the clone's url carry it", async () => {
    withArgvLog({});
    await using clone = await cloneRepo(server.repoUrl.replace('http://', `http://${USER}:${TOKEN}@`), { setting: 'ACCEPT_INSTANCE_REPO' });
    expect(clone.url).toBe(server.repoUrl);
    const args = await argv();
    expect(args).toContain(server.repoUrl);
    for (const form of FORMS) expect(args).not.toContain(form);
  });

  it('a wrong token is refused by the server and the error quotes no form of it', async () => {
    withArgvLog({ ACCEPT_BASE_REPO: server.repoUrl.replace('http://', `http://${USER}:wrong-${TOKEN}@`) });
    const error = (await cloneRepo(server.repoUrl, { setting: 'ACCEPT_BASE_REPO' }).catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(HarnessError);
    for (const form of credentialForms(USER, `wrong-${TOKEN}`)) expect(error.message).not.toContain(form);
  });
});

describe('operatorGitEnv', () => {
  it('names an unreadable credentials file by its setting', () => {
    expect(() => operatorGitEnv({ ACCEPT_GIT_CREDENTIALS_FILE: join(dir, 'absent') })).toThrow(/ACCEPT_GIT_CREDENTIALS_FILE.*absent.*ENOENT/);
  });

  it('never prompts, and gives no header when no credential is set', () => {
    expect(operatorGitEnv({})).toEqual({ GIT_TERMINAL_PROMPT: '0' });
  });
});
