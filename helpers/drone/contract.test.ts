import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driftedServices, SERVICES_DIR, startService, type RunningService } from '../common/testing/standins.ts';
import { waitFor } from '../common/wait.ts';
import { droneBuildDifferences, droneListDifferences, DRONE_STATUSES, type DroneListPage } from './contract.ts';

// Drone's build JSON (GET /api/repos/{owner}/{name}/builds/{n}) for a failed matrix: fields as
// Drone's core.Build, core.Stage and core.Step name them.
const step = (number: number, name: string, status: string, exit_code: number, started: number, stopped: number) => ({
  id: 900 + number,
  step_id: 50,
  number,
  name,
  status,
  exit_code,
  started,
  stopped,
  version: 3,
});
const FIXTURE = {
  id: 77,
  repo_id: 3,
  trigger: '@api',
  number: 12,
  status: 'failure',
  event: 'custom',
  action: '',
  link: '',
  timestamp: 0,
  message: '!testme custom-html',
  before: '',
  after: 'c'.repeat(40),
  ref: 'refs/heads/main',
  source_repo: '',
  source: 'main',
  target: 'main',
  author_login: 'ccci-bot',
  sender: 'ccci-bot',
  params: { RECIPE: 'custom-html', PR: '4', COMMENT_ID: '901' },
  started: 1000,
  finished: 1090,
  created: 999,
  updated: 1090,
  version: 4,
  stages: [
    {
      id: 50,
      repo_id: 3,
      build_id: 77,
      number: 1,
      name: 'install',
      kind: 'pipeline',
      type: 'exec',
      status: 'failure',
      errignore: false,
      exit_code: 1,
      machine: 'ci',
      os: 'linux',
      arch: 'amd64',
      started: 1000,
      stopped: 1080,
      created: 999,
      updated: 1080,
      version: 3,
      on_success: true,
      on_failure: false,
      steps: [step(1, 'deploy', 'success', 0, 1000, 1050), step(2, 'check', 'failure', 1, 1050, 1080)],
    },
    {
      id: 51,
      repo_id: 3,
      build_id: 77,
      number: 2,
      name: 'upgrade',
      kind: 'pipeline',
      type: 'exec',
      status: 'skipped',
      errignore: false,
      exit_code: 0,
      machine: '',
      os: 'linux',
      arch: 'amd64',
      started: 0,
      stopped: 0,
      created: 999,
      updated: 1080,
      version: 2,
      on_success: true,
      on_failure: false,
      depends_on: ['install'],
      steps: [step(1, 'upgrade', 'skipped', 0, 0, 0)],
    },
  ],
};

describe('the Drone build contract, against a real-shaped fixture', () => {
  it('holds', () => {
    expect(droneBuildDifferences(FIXTURE)).toEqual([]);
  });

  it('names a stage or step that ends in `finished`, or a status Drone has not', () => {
    const drifted = structuredClone(FIXTURE) as unknown as { stages: Array<Record<string, unknown> & { steps: Array<Record<string, unknown>> }> };
    drifted.stages[0]!.finished = 1080;
    delete drifted.stages[0]!.steps[1]!.stopped;
    drifted.stages[1]!.steps[0]!.status = 'finished';
    expect(droneBuildDifferences(drifted)).toEqual([
      "stage install has a `finished` field, which Drone's stages and steps do not",
      'stage install step check has no number stopped',
      'stage upgrade step upgrade has status "finished", none of Drone\'s',
    ]);
  });

  it('holds for a list paged as Drone pages it, and names a list that clamps per_page or starts oldest first', async () => {
    const builds = Array.from({ length: 40 }, (_, i) => ({ number: 40 - i }));
    const drone =
      (listed: typeof builds, clamp: (perPage: number) => number): DroneListPage =>
      async (page, perPage) => {
        const limit = clamp(perPage);
        const offset = (Math.max(1, page) - 1) * limit;
        return listed.slice(offset, offset + limit);
      };
    const asDrone = (perPage: number) => (perPage >= 1 && perPage <= 100 ? perPage : 25);
    expect(await droneListDifferences(drone(builds, asDrone))).toEqual([]);
    expect(await droneListDifferences(drone(builds, (perPage) => Math.min(perPage, 100)))).toEqual([
      'per_page=101 listed 40 builds, where Drone answers its default 25',
    ]);
    expect(await droneListDifferences(drone([...builds].reverse(), asDrone))).toEqual([
      `pages 1 and 2 do not follow on newest first: #${Array.from({ length: 20 }, (_, i) => i + 1).join(', #')}`,
    ]);
  });

  it("lists Drone's statuses", () => {
    expect([...DRONE_STATUSES].sort()).toEqual([
      'blocked',
      'declined',
      'error',
      'failure',
      'killed',
      'pending',
      'running',
      'skipped',
      'success',
      'waiting_on_dependencies',
    ]);
  });
});

function ask(url: string, method: 'GET' | 'POST', token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers: { Authorization: `Bearer ${token}` }, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
    });
    request.on('error', reject);
    request.end();
  });
}

/** drone.py from `dir` with a two-stage pipeline whose first stage's second step fails: success, failure and skipped in one build. */
async function standinDrone(dir: string): Promise<RunningService & { cleanup(): Promise<void> }> {
  const tmp = await mkdtemp(join(tmpdir(), 'accept-drone-contract-'));
  await mkdir(join(tmp, 'secrets'));
  await mkdir(join(tmp, 'tests', 'custom-html'), { recursive: true });
  await writeFile(join(tmp, 'secrets', 'drone_api_token'), 'tok-drone\n');
  await writeFile(
    join(tmp, 'pipeline.json'),
    JSON.stringify([
      { name: 'install', steps: ['deploy', 'check'] },
      { name: 'upgrade', steps: ['upgrade'] },
    ]),
  );
  await writeFile(join(tmp, 'harness.py'), 'import sys\nsys.exit(1 if sys.argv[1] == "check" else 0)\n');
  const service = await startService(
    dir,
    'drone.py',
    (port) => [
      '--port',
      String(port),
      '--state-dir',
      join(tmp, 'state'),
      '--repo',
      'coop-cloud/cc-ci',
      '--user',
      'ccci-bot',
      '--token-secret',
      'drone_api_token',
      '--pipeline',
      join(tmp, 'pipeline.json'),
      '--harness',
      join(tmp, 'harness.py'),
      '--tests',
      join(tmp, 'tests'),
      '--python',
      'python3',
    ],
    { CCCI_SECRETS_DIR: join(tmp, 'secrets') },
    '/healthz',
  );
  return {
    ...service,
    cleanup: async () => {
      await service.stop();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

type Build = { status: string; stages: Array<{ status: string; stopped: number; steps: Array<{ status: string }> }> };

/** One build created and followed to its end: what Drone answered at creation and at the end. */
async function oneBuild(drone: RunningService): Promise<{ created: unknown; ended: Build }> {
  const api = (path: string) => `${drone.url}/api/repos/coop-cloud/cc-ci${path}`;
  const created = await ask(api('/builds?branch=main&RECIPE=custom-html&COMMENT_ID=901'), 'POST', 'tok-drone');
  expect(created.status).toBe(200);
  const number = (created.body as { number: number }).number;
  const ended = await waitFor<Build>(
    `build #${number} of the stand-in Drone to end`,
    async () => {
      const build = (await ask(api(`/builds/${number}`), 'GET', 'tok-drone')).body as Build | undefined;
      return build && !['pending', 'running'].includes(build.status) ? build : { done: false as const, saw: build?.status };
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  return { created: created.body, ended };
}

async function createBuilds(drone: RunningService, count: number): Promise<void> {
  for (let i = 0; i < count; i++)
    expect((await ask(`${drone.url}/api/repos/coop-cloud/cc-ci/builds?branch=main&RECIPE=custom-html&COMMENT_ID=${i}`, 'POST', 'tok-drone')).status).toBe(200);
}

describe('the Drone build contract, against the lab stand-in (lab/base/services/drone.py)', () => {
  let drone: Awaited<ReturnType<typeof standinDrone>>;
  beforeAll(async () => (drone = await standinDrone(SERVICES_DIR)));
  afterAll(() => drone?.cleanup());

  it("emits builds of Drone's shape, pending and finished", async () => {
    const { created, ended: build } = await oneBuild(drone);
    expect(droneBuildDifferences(created)).toEqual([]);
    expect(build.status, drone.log().slice(-2000)).toBe('failure');
    expect(droneBuildDifferences(build)).toEqual([]);
    expect(build.stages.map((stage) => [stage.status, stage.steps.map((s) => s.status)])).toEqual([
      ['failure', ['success', 'failure']],
      ['skipped', ['skipped']],
    ]);
    expect(build.stages[0]!.stopped).toBeGreaterThan(0);
  });

  it('pages its build list as Drone does, and a copy that clamps per_page to 100 is caught', async () => {
    const listOf =
      (service: RunningService): DroneListPage =>
      async (page, perPage) => {
        const answer = await ask(`${service.url}/api/repos/coop-cloud/cc-ci/builds?page=${page}&per_page=${perPage}`, 'GET', 'tok-drone');
        expect(answer.status).toBe(200);
        return answer.body as Array<{ number: number }>;
      };
    await createBuilds(drone, 26);
    expect(await droneListDifferences(listOf(drone))).toEqual([]);
    const copy = await driftedServices('drone.py', [['per_page if 1 <= per_page <= 100 else 25', 'min(per_page, 100) if per_page >= 1 else 25']]);
    const drifted = await standinDrone(copy.dir);
    try {
      await createBuilds(drifted, 26);
      expect(await droneListDifferences(listOf(drifted))).toEqual(['per_page=101 listed 26 builds, where Drone answers its default 25']);
    } finally {
      await drifted.cleanup();
      await copy.remove();
    }
  });

  it('catches a stand-in that drifts back to `finished` on its stages', async () => {
    const copy = await driftedServices('drone.py', [['exit_code=exit_code, stopped=t))', 'exit_code=exit_code, stopped=t, finished=t))']]);
    const drifted = await standinDrone(copy.dir);
    try {
      const { ended } = await oneBuild(drifted);
      // Only the stage that ran to its end: the skipped one never reaches that update.
      expect(droneBuildDifferences(ended)).toEqual(["stage install has a `finished` field, which Drone's stages and steps do not"]);
    } finally {
      await drifted.cleanup();
      await copy.remove();
    }
  });
});
