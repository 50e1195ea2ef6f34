/**
 * Drone's API (`Authorization: Bearer …`): builds with their stages and steps, and step logs.
 * Drone calls a stage's and a step's end `stopped`; it is read here as `finished`.
 * A refused token (401, 403) is a final HarnessError; a gateway answer (502/503/504) a transient one.
 */
import { HarnessError } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
import { httpsRequest, isRetryableStatus, jsonBody, type HttpsResponse, type HttpsTransport } from '../https/index.ts';

export interface DroneStep {
  number: number;
  name: string;
  status: string;
  exit_code: number;
  started: number;
  finished: number;
}

export interface DroneStage extends DroneStep {
  steps: DroneStep[];
}

export interface DroneBuild {
  number: number;
  status: string;
  event?: string;
  params: Record<string, string>;
  created: number;
  started: number;
  finished: number;
  stages?: DroneStage[];
}

/** Drone's cap on a list's per_page: above it Drone silently answers 25 (handler/api/repos/builds/list.go). */
export const DRONE_MAX_PER_PAGE = 100;

/** Still going: not a result yet. */
export const UNFINISHED = new Set(['pending', 'running', 'blocked', 'waiting_on_dependencies']);

type Timed = { started?: number; finished?: number; stopped?: number };

function normalise<T extends Timed>(unit: T): T & { finished: number; started: number } {
  // `stopped` is Drone's field (helpers/drone/contract.ts); `finished` only for a shape that carries it.
  return { ...unit, started: unit.started ?? 0, finished: unit.stopped || unit.finished || 0 };
}

export class DroneClient {
  constructor(
    readonly baseUrl: string,
    /** owner/name of the repo the builds run in. */
    readonly repo: string,
    private readonly token: string,
    private readonly transport: HttpsTransport,
    readonly tokenSource: string,
  ) {}

  private async get(path: string): Promise<HttpsResponse> {
    const response = await httpsRequest(this.transport, `${this.baseUrl.replace(/\/$/, '')}/api${path}`, {
      headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
    });
    if (response.status === 401)
      throw new HarnessError(`Drone at ${this.baseUrl} refused the token from ${this.tokenSource} (401 on GET ${path}): set a valid Drone API token there`);
    if (response.status === 403) {
      throw new HarnessError(
        `Drone at ${this.baseUrl} forbids GET ${path} to the token from ${this.tokenSource} (403): its user needs read access to ${this.repo}`,
      );
    }
    if (isRetryableStatus(response.status)) {
      throw new HarnessError(redact(`Drone at ${this.baseUrl} answered ${response.status} on GET ${path}: ${response.text.slice(0, 200)}`), {
        transient: true,
      });
    }
    return response;
  }

  /**
   * Builds newest first, without stages (as Drone lists them), read page by page until `enough`
   * says so, a page comes back short, or `atMost` are listed. Drone has no Link header: a short
   * page is its list's end.
   */
  async builds(options: { atMost?: number; enough?: (listed: readonly DroneBuild[]) => boolean | Promise<boolean> } = {}): Promise<DroneBuild[]> {
    const atMost = options.atMost ?? DRONE_MAX_PER_PAGE;
    const perPage = Math.min(atMost, DRONE_MAX_PER_PAGE);
    const listed: DroneBuild[] = [];
    for (let page = 1; listed.length < atMost; page++) {
      const path = `/repos/${this.repo}/builds?page=${page}&per_page=${perPage}`;
      const response = await this.get(path);
      if (response.status !== 200)
        throw new HarnessError(redact(`Drone build list of ${this.repo} answered ${response.status} on GET ${path}: ${response.text.slice(0, 200)}`));
      const builds = jsonBody<DroneBuild[]>(response);
      if (!Array.isArray(builds)) throw new HarnessError(`Drone build list of ${this.repo} answered something other than a list on GET ${path}`);
      listed.push(...builds.map((build) => ({ ...build, params: build.params ?? {} })));
      if (builds.length < perPage || (await options.enough?.(listed))) break;
    }
    return listed.slice(0, atMost);
  }

  async build(number: number): Promise<DroneBuild> {
    const response = await this.get(`/repos/${this.repo}/builds/${number}`);
    if (response.status !== 200)
      throw new HarnessError(redact(`Drone build ${this.repo}#${number} answered ${response.status}: ${response.text.slice(0, 200)}`));
    const build = jsonBody<DroneBuild & { stages?: Array<DroneStage & Timed> }>(response);
    return {
      ...build,
      params: build.params ?? {},
      stages: (build.stages ?? []).map((stage) => ({ ...normalise(stage), steps: (stage.steps ?? []).map((step) => normalise(step)) })),
    };
  }

  /** One step's log as text; undefined when Drone has none for it (404). */
  async log(number: number, stage: number, step: number): Promise<string | undefined> {
    const response = await this.get(`/repos/${this.repo}/builds/${number}/logs/${stage}/${step}`);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw new HarnessError(`Drone log ${this.repo}#${number} ${stage}/${step} answered ${response.status}`);
    return jsonBody<Array<{ out: string }>>(response)
      .map((line) => line.out)
      .join('');
  }

  /** The web UI's root page (no token: it is what a browser gets). */
  ui(): Promise<HttpsResponse> {
    return httpsRequest(this.transport, `${this.baseUrl.replace(/\/$/, '')}/`, { headers: { Accept: 'text/html' } });
  }
}
