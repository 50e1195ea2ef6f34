import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { displayUrl, gitHeaderConfigFile, gitHeaderEnv, mergeCredentials, parseCredentialStore, splitUrlCredentials } from './credentials.ts';
import { ConfigError } from './errors.ts';
import { forgetSecrets, redact } from './redact.ts';

const TOKEN = 'tok3n-Sample_9Zq';

afterEach(() => forgetSecrets());

function refusal(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('was accepted');
}

describe('displayUrl', () => {
  it('drops the whole userinfo of an http(s) URL, where a token may sit in the user part', () => {
    expect(displayUrl(`https://bot:${TOKEN}@git.example.net/cc-ci.git`)).toBe('https://git.example.net/cc-ci.git');
    expect(displayUrl(`https://${TOKEN}@git.example.net/cc-ci.git`)).toBe('https://git.example.net/cc-ci.git');
  });

  it('keeps an ssh user but never a password, and leaves what is not a URL alone', () => {
    expect(displayUrl(`ssh://git:${TOKEN}@git.example.net/cc-ci.git`)).toBe('ssh://git@git.example.net/cc-ci.git');
    expect(displayUrl('git@git.example.net:cc-ci.git')).toBe('git@git.example.net:cc-ci.git');
    expect(displayUrl('http://127.0.0.1:8418/cc-ci.git')).toBe('http://127.0.0.1:8418/cc-ci.git');
  });
});

describe('splitUrlCredentials', () => {
  it('lifts the userinfo out, decoded, and registers it for redaction', () => {
    const split = splitUrlCredentials('ACCEPT_BASE_REPO', `https://bot:${encodeURIComponent(`${TOKEN}/+`)}@git.example.net/cc-ci.git`);
    expect(split.url).toBe('https://git.example.net/cc-ci.git');
    expect(split.credential).toEqual({ origin: 'https://git.example.net', username: 'bot', password: `${TOKEN}/+` });
    expect(redact(`x ${TOKEN}/+ y`)).not.toContain(TOKEN);
  });

  it('refuses a secret too short to redact, without quoting it', () => {
    const error = refusal(() => splitUrlCredentials('ACCEPT_BASE_REPO', 'https://bot:abc@git.example.net/cc-ci.git'));
    expect(error.message).toContain('ACCEPT_BASE_REPO');
    expect(error.message).not.toContain('abc@');
  });

  it('refuses a password in an ssh URL, naming the setting to use instead and not the password', () => {
    const error = refusal(() => splitUrlCredentials('ACCEPT_INSTANCE_REPO', `ssh://git:${TOKEN}@git.example.net/s.git`));
    expect(error.message).toContain('ACCEPT_GIT_CREDENTIALS_FILE');
    expect(error.message).not.toContain(TOKEN);
  });
});

describe('loadConfig and repo URLs with credentials', () => {
  it('keeps no credential in baseRepo or instanceRepo, and hands both to git as credentials', () => {
    const config = loadConfig({
      ACCEPT_BASE_REPO: `https://bot:${TOKEN}@git.example.net/cc-ci.git`,
      ACCEPT_INSTANCE_REPO: `https://${TOKEN}x@git.example.org/s.git`,
    });
    expect(config.baseRepo).toBe('https://git.example.net/cc-ci.git');
    expect(config.instanceRepo).toBe('https://git.example.org/s.git');
    expect(config.urlCredentials.map((credential) => credential.origin)).toEqual(['https://git.example.net', 'https://git.example.org']);
    expect(JSON.stringify({ ...config, urlCredentials: undefined })).not.toContain(TOKEN);
  });
});

describe('parseCredentialStore', () => {
  it('reads git-credential-store lines, percent-decoded, skipping blanks and comments', () => {
    const text = `# ci bot\n\nhttps://ci-bot:${encodeURIComponent(`${TOKEN}@!`)}@git.coopcloud.tech\nhttp://u:${TOKEN}@127.0.0.1:8418\n`;
    expect(parseCredentialStore(text, 'ACCEPT_GIT_CREDENTIALS_FILE', '/tmp/c')).toEqual([
      { origin: 'https://git.coopcloud.tech', username: 'ci-bot', password: `${TOKEN}@!` },
      { origin: 'http://127.0.0.1:8418', username: 'u', password: TOKEN },
    ]);
    expect(redact(`${TOKEN}@!`)).toBe('[REDACTED]');
  });

  it('refuses a bare token line by its line number, never quoting it, and registers it', () => {
    const error = refusal(() => parseCredentialStore(`${TOKEN}\n`, 'ACCEPT_HOST_GIT_CREDENTIALS_FILE', '/tmp/c'));
    expect(error.message).toContain('/tmp/c line 1');
    expect(error.message).not.toContain(TOKEN);
    expect(redact(TOKEN)).toBe('[REDACTED]');
  });

  it('refuses two lines for one host (git would send both headers) and an empty file', () => {
    expect(refusal(() => parseCredentialStore(`https://a:${TOKEN}@h.example\nhttps://b:${TOKEN}x@h.example/other\n`, 'V', 'f')).message).toContain(
      'second credential for https://h.example',
    );
    expect(refusal(() => parseCredentialStore('# nothing\n', 'V', 'f')).message).toContain('holds no credential');
  });
});

describe('what git is given', () => {
  const credentials = [{ origin: 'https://git.example.net', username: 'bot', password: TOKEN }];
  const basic = Buffer.from(`bot:${TOKEN}`).toString('base64');

  it('an extraHeader per origin, through GIT_CONFIG_* variables, with the header value registered for redaction', () => {
    splitUrlCredentials('V', `https://bot:${TOKEN}@git.example.net/x.git`);
    expect(gitHeaderEnv(credentials)).toEqual({
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.https://git.example.net/.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    });
    expect(redact(basic)).toBe('[REDACTED]');
    expect(gitHeaderEnv([])).toEqual({});
  });

  it('the host gets the same as a git config file', () => {
    expect(gitHeaderConfigFile(credentials)).toBe(`[http "https://git.example.net/"]\n\textraHeader = Authorization: Basic ${basic}\n`);
  });

  it('the first credential for an origin wins', () => {
    expect(mergeCredentials(credentials, [{ origin: 'https://git.example.net', username: 'x', password: 'other-token' }])).toEqual(credentials);
  });
});
