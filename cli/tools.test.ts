/** The toolkit commands, run as a person would: the real CLI in a child process. */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { exec } from '../helpers/common/exec.ts';

const CLI = join(import.meta.dirname, '..', 'bin', 'accept.mjs');
// shared/ sits beside the repo, in a session and in CI alike.
const vectors = join(import.meta.dirname, '..', 'helpers', 'sops', 'vectors', 'sops-nix');
const accept = (args: string[]) => exec(process.execPath, [CLI, ...args], { timeoutMs: 30_000 });

describe('accept sops', () => {
  it('decrypts the real sops-nix vector to JSON after checking its MAC', async (ctx) => {
    if (!existsSync(join(vectors, 'secrets.yaml'))) ctx.skip(`the real sops vectors are not at ${vectors}`);
    const dir = vectors;
    const result = await accept(['sops', 'decrypt', '--identity', join(dir, 'age-keys.txt'), join(dir, 'secrets.yaml')]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ test_key: 'test_value', nested: { test: { file: 'another value' } } });
    expect(result.stderr).toContain('MAC verified');
  });

  it('encrypts to a recipient, decrypts back, and names the file when the key is wrong', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'accept-cli-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const identity = await generateIdentity();
    await writeFile(join(dir, 'key.txt'), `${identity}\n`);
    await writeFile(join(dir, 'other.txt'), `${await generateIdentity()}\n`);
    await writeFile(join(dir, 'plain.yaml'), 'token: s3cr3t-value\nport: 8080\n');
    const encrypted = await accept(['sops', 'encrypt', '--age', await identityToRecipient(identity), join(dir, 'plain.yaml')]);
    expect(encrypted.exitCode, encrypted.stderr).toBe(0);
    expect(encrypted.stdout).not.toContain('s3cr3t-value');
    await writeFile(join(dir, 'secrets.yaml'), encrypted.stdout);
    const decrypted = await accept(['sops', 'decrypt', '--identity', join(dir, 'key.txt'), join(dir, 'secrets.yaml')]);
    expect(JSON.parse(decrypted.stdout)).toEqual({ token: 's3cr3t-value', port: 8080 });
    const wrong = await accept(['sops', 'decrypt', '--identity', join(dir, 'other.txt'), join(dir, 'secrets.yaml')]);
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stderr).toMatch(/none of the 1 age identities opens .* in .*secrets\.yaml/);
    expect(wrong.stderr).not.toContain('AGE-SECRET-KEY');
    // Three whole CLI processes, each up to 30 s on a loaded 2-core machine.
  }, 90_000);

  it('explains a missing argument by its flag', async () => {
    const result = await accept(['sops', 'encrypt', '/dev/null']);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain('--age: needs one or more age recipients');
  });
});
