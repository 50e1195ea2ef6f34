/**
 * A small Incus REST client for the harness: mutual TLS with a pinned server certificate,
 * optionally through a SOCKS5 proxy, every request scoped to one project. The client (instances,
 * exec, files) is here; the connection and the REST layer under it are transport.ts's.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { Pool } from 'undici';
import { parseSocksUrl } from '../common/dial.ts';
import { ConfigError, errorMessage } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { waitFor } from '../common/wait.ts';
import { registerSecret } from '../common/redact.ts';
import {
  DEFAULT_OPERATION_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  IncusApi,
  IncusError,
  Transport,
  certificateFingerprint,
  type IncusClientOptions,
  type IncusOperation,
  type IncusSettingName,
} from './transport.ts';

export {
  IncusError,
  certificateFingerprint,
  type IncusClientOptions,
  type IncusErrorDetails,
  type IncusOperation,
  type IncusSettingName,
} from './transport.ts';

export interface IncusServer {
  auth: 'trusted' | 'untrusted' | string;
  api_version: string;
  api_extensions?: string[];
  auth_methods?: string[];
  config?: Record<string, unknown>;
  environment?: {
    server_version?: string;
    server_name?: string;
    certificate_fingerprint?: string;
    driver?: string;
    project?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface IncusResources {
  cpu: { total: number; architecture?: string; [key: string]: unknown };
  memory: { total: number; used: number; [key: string]: unknown };
  [key: string]: unknown;
}

export type IncusInstanceType = 'container' | 'virtual-machine';

export interface IncusInstance {
  name: string;
  status: string;
  status_code?: number;
  type: IncusInstanceType;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  expanded_config: Record<string, string>;
  expanded_devices?: Record<string, Record<string, string>>;
  profiles?: string[];
  created_at: string;
  [key: string]: unknown;
}

/** One guest interface in GET /1.0/instances/<name>/state (for a VM, as its agent reports it). */
export interface IncusNetworkState {
  addresses?: { family: string; address: string; netmask?: string; scope: string }[];
  type?: string;
  /** The host side of a NIC Incus attached; empty for interfaces made inside the guest. */
  host_name?: string;
  [key: string]: unknown;
}

export interface IncusInstanceState {
  status: string;
  network?: Record<string, IncusNetworkState> | null;
  [key: string]: unknown;
}

export interface IncusProfile {
  name: string;
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  [key: string]: unknown;
}

export interface IncusInstanceSpec {
  name: string;
  type: IncusInstanceType;
  source: { type: 'image'; alias: string };
  config: Record<string, string>;
  devices: Record<string, Record<string, string>>;
  profiles?: string[];
}

export interface IncusExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** uid to run as. */
  user?: number;
  /** gid to run as; defaults to `user`, since Incus would otherwise use gid 0. */
  group?: number;
}

export interface IncusExecResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface IncusFileOptions {
  mode: number;
  uid?: number;
  gid?: number;
}

const DEFAULT_SETTINGS: Record<IncusSettingName, string> = {
  url: 'ACCEPT_INCUS_URL',
  clientCert: 'ACCEPT_INCUS_CLIENT_CERT',
  serverCert: 'ACCEPT_INCUS_SERVER_CERT',
  socks: 'ACCEPT_SOCKS',
  project: 'ACCEPT_INCUS_PROJECT',
  image: 'ACCEPT_INCUS_IMAGE',
};

function parseCertificate(pem: string, setting: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new ConfigError(setting, `is not a PEM certificate: ${errorMessage(error)}`);
  }
}

function octal(mode: number): string {
  // Incus parses the header with base prefix detection, so the leading 0 marks it octal.
  return `0${(mode & 0o7777).toString(8)}`;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function isAlreadyInState(error: unknown, pattern: RegExp): boolean {
  return error instanceof IncusError && pattern.test(error.operation?.err ?? error.message);
}

const sharedClients = new Map<string, Promise<IncusClient>>();

export class IncusClient extends IncusApi {
  private readonly outputCleaning = new Set<Promise<void>>();
  private isShared = false;
  private constructor(
    options: IncusClientOptions,
    names: Record<IncusSettingName, string>,
    pool: Pool,
    private readonly clientFingerprint: string,
  ) {
    super(options, names, pool);
  }

  /** Connects, then checks that the server trusts us and that the project exists. */
  /**
   * One connected client per server, project, credentials and proxy in this process, for the
   * harness's many short users (a run's attach, each fixture, each re-run of a long-lived
   * session): a connect is a TLS handshake through the proxy and two requests, longer than most
   * calls made over it. The server's certificate is still checked on every new connection
   * (undici reconnects through the same pinned handshake). Its close() only waits for the exec
   * output being deleted; the connection, idle, does not keep the process alive.
   */
  static async shared(options: IncusClientOptions): Promise<IncusClient> {
    const key = createHash('sha256')
      .update(
        JSON.stringify([
          options.url,
          options.project,
          options.socks ?? '',
          options.serverCert ?? '',
          options.serverFingerprint ?? '',
          options.clientCert,
          options.clientKey,
          options.requestTimeoutMs ?? 0,
        ]),
      )
      .digest('hex');
    let client = sharedClients.get(key);
    if (!client) {
      client = IncusClient.connect(options).then((connected) => {
        connected.isShared = true;
        return connected;
      });
      sharedClients.set(key, client);
      // A connect that failed is tried again by the next caller, not remembered.
      client.catch(() => sharedClients.delete(key));
    }
    return client;
  }

  static async connect(options: IncusClientOptions): Promise<IncusClient> {
    const names: Record<IncusSettingName, string> = {
      ...DEFAULT_SETTINGS,
      ...(options.serverCert === undefined && options.settingNames?.serverCert === undefined ? { serverCert: 'ACCEPT_INCUS_SERVER_FINGERPRINT' } : {}),
      ...Object.fromEntries(Object.entries(options.settingNames ?? {}).filter(([, name]) => name)),
    };
    registerSecret(options.clientKey);

    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ConfigError(names.url, `is not a URL: ${JSON.stringify(options.url)}`);
    }
    if (url.protocol !== 'https:') throw new ConfigError(names.url, `must be an https:// URL; got ${options.url}`);
    // A malformed proxy URL is a ConfigError now, before any request is made.
    if (options.socks) parseSocksUrl(options.socks, names.socks);

    const clientFingerprint = certificateFingerprint(parseCertificate(options.clientCert, names.clientCert));
    let pin: string;
    if (options.serverCert) {
      pin = certificateFingerprint(parseCertificate(options.serverCert, names.serverCert));
    } else if (options.serverFingerprint) {
      pin = options.serverFingerprint.replaceAll(':', '').toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(pin)) throw new ConfigError(names.serverCert, 'must be a SHA-256 fingerprint (64 hex digits)');
    } else {
      throw new ConfigError(names.serverCert, 'is required: the Incus server certificate must be pinned');
    }

    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const transport = new Transport({
      url,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 443),
      clientCert: options.clientCert,
      clientKey: options.clientKey,
      serverCert: options.serverCert,
      pin,
      socks: options.socks,
      timeoutMs,
      names,
    });
    const pool = new Pool(url.origin, {
      connect: transport.connector,
      connections: 8,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const client = new IncusClient(options, names, pool, clientFingerprint);
    try {
      await client.checkAccess();
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  private async checkAccess(): Promise<void> {
    const server = await this.server();
    if (server.auth !== 'trusted') {
      throw new IncusError(
        `Incus at ${this.url} does not trust the client certificate in ${this.names.clientCert} ` +
          `(sha256 ${this.clientFingerprint}); add it with \`incus config trust add-certificate\``,
        { method: 'GET', path: this.path('/1.0'), status: 200, setting: this.names.clientCert },
      );
    }
    // Incus answers most project-scoped reads for an unknown project with empty lists, so ask directly.
    const projectPath = `/1.0/projects/${encodeURIComponent(this.project)}`;
    try {
      await this.call('GET', projectPath);
    } catch (error) {
      if (error instanceof IncusError && (error.status === 404 || error.status === 403)) {
        throw new IncusError(
          `Incus at ${this.url} has no project ${JSON.stringify(this.project)} visible to this client ` +
            `(HTTP ${error.status}); create it or fix ${this.names.project}`,
          { method: 'GET', path: this.path(projectPath), status: error.status, setting: this.names.project, cause: error },
        );
      }
      throw error;
    }
  }

  server(): Promise<IncusServer> {
    return this.call('GET', '/1.0') as Promise<IncusServer>;
  }

  resources(): Promise<IncusResources> {
    return this.call('GET', '/1.0/resources') as Promise<IncusResources>;
  }

  async listInstances(): Promise<IncusInstance[]> {
    return (await this.call('GET', '/1.0/instances', { query: { recursion: '1' } })) as IncusInstance[];
  }

  async getInstance(name: string): Promise<IncusInstance | undefined> {
    try {
      return (await this.call('GET', instancePath(name))) as IncusInstance;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return undefined;
      throw error;
    }
  }

  async instanceState(name: string): Promise<IncusInstanceState> {
    return (await this.call('GET', `${instancePath(name)}/state`)) as IncusInstanceState;
  }

  async getProfile(name: string): Promise<IncusProfile | undefined> {
    try {
      return (await this.call('GET', `/1.0/profiles/${encodeURIComponent(name)}`)) as IncusProfile;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return undefined;
      throw error;
    }
  }

  async imageAliasExists(alias: string): Promise<boolean> {
    try {
      await this.call('GET', `/1.0/images/aliases/${encodeURIComponent(alias)}`);
      return true;
    } catch (error) {
      if (error instanceof IncusError && error.status === 404) return false;
      throw error;
    }
  }

  async createInstance(spec: IncusInstanceSpec, options: { timeoutMs?: number } = {}): Promise<void> {
    const missing = (cause?: unknown): IncusError =>
      new IncusError(
        `Incus at ${this.url} has no image alias ${JSON.stringify(spec.source.alias)} in project ` +
          `${JSON.stringify(this.project)}; import the image or fix ${this.names.image}`,
        { method: 'POST', path: this.path('/1.0/instances'), status: 404, setting: this.names.image, cause },
      );
    if (!(await this.imageAliasExists(spec.source.alias))) throw missing();
    try {
      await this.call('POST', '/1.0/instances', {
        body: spec,
        operationTimeoutMs: options.timeoutMs,
        operationDescription: `creating instance ${spec.name}`,
      });
    } catch (error) {
      // The alias can vanish between the check and the create.
      if (error instanceof IncusError && error.status === 404 && /alias|image/i.test(error.message)) throw missing(error);
      throw error;
    }
  }

  /** Starting a running instance counts as success. */
  async start(name: string, options: { timeoutMs?: number } = {}): Promise<void> {
    try {
      await this.call('PUT', `${instancePath(name)}/state`, {
        body: { action: 'start', timeout: -1, force: false, stateful: false },
        operationTimeoutMs: options.timeoutMs,
        operationDescription: `starting instance ${name}`,
      });
    } catch (error) {
      if (!isAlreadyInState(error, /already running/i)) throw error;
    }
  }

  /**
   * Stopping a stopped instance counts as success. Incus reads `timeout: 0` as "kill now", so a
   * clean shutdown gets 30 s unless told otherwise.
   */
  async stop(name: string, options: { force?: boolean; timeoutS?: number } = {}): Promise<void> {
    const timeoutS = options.timeoutS ?? 30;
    try {
      await this.call('PUT', `${instancePath(name)}/state`, {
        body: { action: 'stop', timeout: timeoutS, force: options.force ?? false, stateful: false },
        operationTimeoutMs: (timeoutS + 60) * 1000,
        operationDescription: `stopping instance ${name}`,
      });
    } catch (error) {
      if (!isAlreadyInState(error, /already stopped/i)) throw error;
    }
  }

  /**
   * Deleting an instance that is gone counts as success; a running one is stopped first. One that
   * is running again by the time of the DELETE (incusd, just started, brings back what ran before
   * it stopped, and may do so after our stop) is stopped again, within a minute.
   */
  async deleteInstance(name: string): Promise<void> {
    await waitFor(
      `instance ${name} in ${this.project} to be stopped and deleted`,
      async () => {
        const instance = await this.getInstance(name);
        if (!instance) return true;
        if (instance.status !== 'Stopped') await this.stop(name, { force: true });
        try {
          await this.call('DELETE', instancePath(name), { operationDescription: `deleting instance ${name}` });
          return true;
        } catch (error) {
          if (error instanceof IncusError && error.status === 404) return true;
          if (isAlreadyInState(error, /is running/i)) return { done: false as const, saw: `${name} running again after its stop` };
          throw error;
        }
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }

  async patchInstanceConfig(name: string, config: Record<string, string>): Promise<void> {
    await this.call('PATCH', instancePath(name), {
      body: { config },
      operationDescription: `updating the configuration of ${name}`,
    });
  }

  /**
   * Runs a command without websockets: Incus records stdout/stderr to log files that we fetch
   * and delete afterwards. A non-zero exit is returned, never thrown.
   */
  async exec(name: string, command: string[], options: IncusExecOptions = {}): Promise<IncusExecResult> {
    const text = `incus exec ${name} -- ${command.map(shellQuote).join(' ')}`;
    const body: Record<string, unknown> = {
      command,
      environment: options.env ?? {},
      'record-output': true,
      'wait-for-websocket': false,
      interactive: false,
    };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.user !== undefined) body.user = options.user;
    const group = options.group ?? options.user;
    if (group !== undefined) body.group = group;

    let operation: IncusOperation;
    let failure = '';
    try {
      operation = (await this.call('POST', `${instancePath(name)}/exec`, {
        body,
        operationTimeoutMs: options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
        operationDescription: `\`${text}\``,
      })) as IncusOperation;
    } catch (error) {
      // Incus fails the operation for exit codes 126/127 but still records the code and output.
      const failed = error instanceof IncusError ? error.operation : undefined;
      if (!failed || typeof failed.metadata?.return !== 'number') throw error;
      operation = failed;
      failure = failed.err;
    }
    const metadata = operation.metadata ?? {};
    const exitCode = typeof metadata.return === 'number' ? metadata.return : -1;
    const output = (metadata.output ?? {}) as Record<string, string>;
    const [stdout, stderr] = await Promise.all([this.readExecOutput(output['1']), this.readExecOutput(output['2'])]);
    // The result is in hand: the recorded output goes while the caller goes on (a fifth of an
    // exec's time here), and close() waits for it.
    const cleaning = Promise.all([this.deleteExecOutput(output['1']), this.deleteExecOutput(output['2'])]).then(() => undefined);
    this.outputCleaning.add(cleaning);
    void cleaning.finally(() => this.outputCleaning.delete(cleaning));
    // When Incus itself could not run the program, its reason is the most useful stderr.
    return { command: text, exitCode, stdout, stderr: stderr || failure };
  }

  private async readExecOutput(path: string | undefined): Promise<string> {
    if (!path) return '';
    return (await this.callRaw('GET', path)).toString('utf8');
  }

  private async deleteExecOutput(path: string | undefined): Promise<void> {
    if (!path) return;
    try {
      await this.call('DELETE', path);
    } catch (error) {
      // The result is already in hand; a leftover log file is not worth failing the caller for.
      log.warn(`could not delete exec output ${path}: ${errorMessage(error)}`);
    }
  }

  /**
   * Writes a file. Incus applies mode and ownership only when it creates the file, so any old
   * copy is removed first to make the requested mode true.
   */
  async pushFile(name: string, path: string, content: string | Buffer, options: IncusFileOptions): Promise<void> {
    const filesPath = `${instancePath(name)}/files`;
    try {
      await this.call('DELETE', filesPath, { query: { path } });
    } catch (error) {
      // Whether SFTP's "no such file" reaches us as 404 depends on the server's libraries.
      const absent = error instanceof IncusError && (error.status === 404 || (error.status === 500 && /no such file|not exist/i.test(error.message)));
      if (!absent) throw error;
    }
    await this.call('POST', filesPath, {
      query: { path },
      raw: typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
      headers: fileHeaders('file', options),
    });
  }

  /** Creates one directory (no parents); an existing directory is left as it is. */
  async mkdir(name: string, path: string, options: IncusFileOptions): Promise<void> {
    await this.call('POST', `${instancePath(name)}/files`, {
      query: { path },
      raw: Buffer.alloc(0),
      headers: fileHeaders('directory', options),
    });
  }

  async pullFile(name: string, path: string): Promise<Buffer> {
    const filesPath = `${instancePath(name)}/files`;
    const response = await this.send('GET', filesPath, { query: { path } });
    if (response.status !== 200) this.throwFor('GET', filesPath, response, { path });
    const type = response.headers['x-incus-type'];
    if (type !== undefined && type !== 'file') {
      throw new IncusError(`Incus at ${this.url}: ${path} in ${name} is a ${String(type)}, not a file`, {
        method: 'GET',
        path: this.path(filesPath, { path }),
        status: response.status,
      });
    }
    return response.body;
  }

  /** Every exec's recorded output deleted (or its failure warned of): exec() does not wait for it. */
  async execOutputCleaned(): Promise<void> {
    await Promise.all(this.outputCleaning);
  }

  async close(): Promise<void> {
    await this.execOutputCleaned();
    if (!this.isShared) await this.pool.close();
  }
}

function instancePath(name: string): string {
  return `/1.0/instances/${encodeURIComponent(name)}`;
}

function fileHeaders(type: 'file' | 'directory', options: IncusFileOptions): Record<string, string> {
  const headers: Record<string, string> = {
    'x-incus-type': type,
    'x-incus-mode': octal(options.mode),
    'x-incus-write': 'overwrite',
  };
  if (options.uid !== undefined) headers['x-incus-uid'] = String(options.uid);
  if (options.gid !== undefined) headers['x-incus-gid'] = String(options.gid);
  return headers;
}
