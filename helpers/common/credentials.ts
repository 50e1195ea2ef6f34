/**
 * Git credentials: from files named by settings, or lifted out of a repo URL's userinfo. The
 * harness hands them to git as an `http.<origin>/.extraHeader`, passed through the environment
 * (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`) on this machine and through a
 * pushed git config on the host: never in argv, never in a URL. Every value is registered for
 * redaction the moment it is read, and every URL the harness records goes through displayUrl().
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';
import { registerSecret } from './redact.ts';

export interface GitCredential {
  /** scheme://host[:port], the scope git matches the header against. */
  origin: string;
  username: string;
  password: string;
}

/** Shorter secrets would not be redacted (redact.ts ignores them, or it would eat words). */
const MIN_SECRET_LENGTH = 6;

function isHttp(protocol: string): boolean {
  return protocol === 'http:' || protocol === 'https:';
}

/**
 * A URL as the harness may record it: over http(s) with no userinfo at all (a forge token may
 * sit in the user part), elsewhere without the password. Anything that is not a URL (a path,
 * `git@host:repo`) carries no password and is returned as it is.
 */
export function displayUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.username && !parsed.password) return url;
  if (isHttp(parsed.protocol)) parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

function register(credential: GitCredential): GitCredential {
  for (const value of [credential.password, credential.username]) {
    if (value.length >= MIN_SECRET_LENGTH) registerSecret(value);
  }
  if (credential.password) registerSecret(`${credential.username}:${credential.password}`);
  // The header's base64 is the token too, as anyone can decode it.
  registerSecret(basicAuth(credential).replace(/^Basic /, ''));
  return credential;
}

function credentialOf(parsed: URL, variable: string, where: string): GitCredential {
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  // A token given as the user alone (`https://TOKEN@host`) is the secret then.
  const secret = password || username;
  // Registered before any check can quote it.
  if (secret.length >= MIN_SECRET_LENGTH) registerSecret(secret);
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      variable,
      `${where}: the password or token is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact reliably from the evidence`,
    );
  }
  return register({ origin: parsed.origin, username, password });
}

/**
 * Splits a repo setting into the URL the harness uses and records (no credentials) and the
 * credential its userinfo carried, if any. Only http(s) can carry one: the header is HTTP.
 */
export function splitUrlCredentials(variable: string, url: string): { url: string; credential?: GitCredential } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url };
  }
  if (!parsed.password && !(isHttp(parsed.protocol) && parsed.username)) return { url };
  if (!isHttp(parsed.protocol)) {
    registerSecret(decodeURIComponent(parsed.password));
    throw new ConfigError(
      variable,
      `carries a password in a ${parsed.protocol.replace(/:$/, '')} URL (${displayUrl(url)}); only http(s) credentials are supported: use an SSH key, or an https URL with ACCEPT_GIT_CREDENTIALS_FILE`,
    );
  }
  return { url: displayUrl(url), credential: credentialOf(parsed, variable, `the userinfo of ${displayUrl(url)}`) };
}

/**
 * A git-credential-store file: one `https://user:token@host` per line, percent-encoded as
 * `git credential-store` writes it; blank lines and `#` comments are skipped. One line per
 * origin: git would send every header that matches, so a second one for an origin is refused.
 */
export function parseCredentialStore(text: string, variable: string, file: string): GitCredential[] {
  const credentials: GitCredential[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file} line ${index + 1}`;
    let parsed: URL | undefined;
    try {
      parsed = new URL(line);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !isHttp(parsed.protocol) || !(parsed.username || parsed.password)) {
      // The line may be a bare token: register it before refusing, and never quote it.
      registerSecret(line);
      throw new ConfigError(variable, `${where} is not a credential-store line such as https://user:token@git.example.net`);
    }
    const credential = credentialOf(parsed, variable, where);
    if (credentials.some((known) => known.origin === credential.origin)) {
      throw new ConfigError(variable, `${where}: a second credential for ${credential.origin}; keep one line per host`);
    }
    credentials.push(credential);
  });
  if (credentials.length === 0) throw new ConfigError(variable, `${file} holds no credential; give lines such as https://user:token@git.example.net`);
  return credentials;
}

export function basicAuth(credential: GitCredential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

/** One credential per origin, the first given winning, as git's credential store does. */
export function mergeCredentials(...lists: GitCredential[][]): GitCredential[] {
  const merged: GitCredential[] = [];
  for (const credential of lists.flat()) {
    if (!merged.some((known) => known.origin === credential.origin)) merged.push(credential);
  }
  return merged;
}

/** `[key, value]` pairs of git config that send each credential to its origin only. */
export function gitHeaderConfig(credentials: GitCredential[]): [string, string][] {
  return credentials.map((credential) => [`http.${credential.origin}/.extraHeader`, `Authorization: ${basicAuth(credential)}`]);
}

/** The same, as environment for a git process (git 2.31+), so nothing lands in argv. */
export function gitHeaderEnv(credentials: GitCredential[]): Record<string, string> {
  const pairs = gitHeaderConfig(credentials);
  if (pairs.length === 0) return {};
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return env;
}

/** The same, as a git config file for the host (`~/.gitconfig`). */
export function gitHeaderConfigFile(credentials: GitCredential[]): string {
  return credentials.map((credential) => `[http "${credential.origin}/"]\n\textraHeader = Authorization: ${basicAuth(credential)}\n`).join('');
}

/** Reads a git-credential-store file named by a setting; its tokens are registered for redaction as it is parsed. */
export function readCredentialsFile(file: string, variable: string): GitCredential[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      variable,
      `cannot read the git credentials file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); fix the path`,
    );
  }
  return parseCredentialStore(text, variable, file);
}
