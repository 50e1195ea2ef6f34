/**
 * The Drone contract: the shape of a build's JSON (GET /api/repos/{owner}/{name}/builds/{n})
 * that the harness reads, checked against fixtures and against the lab's stand-in
 * (lab/base/services/drone.py). A stage's and a step's end is `stopped`: only the build has
 * `finished`, and DroneClient's normalise reads `stopped` as `finished` for the specs.
 * And the build list's paging (GET …/builds?page=&per_page=), as its handler
 * (handler/api/repos/builds/list.go) answers: newest first, pages that follow on, no Link header,
 * and a per_page outside 1..100 answered as 25.
 */

/** Drone's statuses (core.Status…). */
export const DRONE_STATUSES = [
  'pending',
  'running',
  'success',
  'failure',
  'killed',
  'error',
  'skipped',
  'blocked',
  'declined',
  'waiting_on_dependencies',
] as const;

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function unitDifferences(unit: Json, where: string, fields: readonly string[], ends: 'stopped' | 'finished'): string[] {
  const problems: string[] = [];
  for (const field of fields) if (typeof unit[field] !== 'number') problems.push(`${where} has no number ${field}`);
  if (typeof unit.name !== 'string' && where !== 'the build') problems.push(`${where} has no name`);
  if (!(DRONE_STATUSES as readonly unknown[]).includes(unit.status)) problems.push(`${where} has status ${JSON.stringify(unit.status)}, none of Drone's`);
  if (typeof unit[ends] !== 'number') problems.push(`${where} has no number ${ends}`);
  // Drone's stages and steps have no `finished`: a reader of it would read nothing on the real one.
  if (ends === 'stopped' && 'finished' in unit) problems.push(`${where} has a \`finished\` field, which Drone's stages and steps do not`);
  return problems;
}

/** Where a build's JSON differs from Drone's shape; none when it meets the contract. */
export function droneBuildDifferences(build: unknown): string[] {
  if (!isObject(build)) return ['the build is not a JSON object'];
  const problems = unitDifferences(build, 'the build', ['number', 'created', 'started'], 'finished');
  if (!isObject(build.params)) problems.push('the build has no params object');
  if (!Array.isArray(build.stages)) return [...problems, 'the build has no stages list'];
  build.stages.forEach((stage: unknown, s) => {
    if (!isObject(stage)) {
      problems.push(`stage ${s + 1} is not an object`);
      return;
    }
    const where = `stage ${String(stage.name ?? s + 1)}`;
    problems.push(...unitDifferences(stage, where, ['number', 'exit_code', 'started'], 'stopped'));
    if (!Array.isArray(stage.steps)) {
      problems.push(`${where} has no steps list`);
      return;
    }
    stage.steps.forEach((step: unknown, i) => {
      if (!isObject(step)) {
        problems.push(`${where} step ${i + 1} is not an object`);
        return;
      }
      problems.push(...unitDifferences(step, `${where} step ${String(step.name ?? i + 1)}`, ['number', 'exit_code', 'started'], 'stopped'));
    });
  });
  return problems;
}

/** One page of Drone's build list, as `GET …/builds?page=${page}&per_page=${perPage}` answers it. */
export type DroneListPage = (page: number, perPage: number) => Promise<ReadonlyArray<{ number: number }>>;

/** Where a build list's paging differs from Drone's; none when it meets the contract. Needs 26 or more builds. */
export async function droneListDifferences(list: DroneListPage): Promise<string[]> {
  const problems: string[] = [];
  const numbers = async (page: number, perPage: number) => (await list(page, perPage)).map((build) => build.number);
  const [first, second, zeroth, over] = [await numbers(1, 10), await numbers(2, 10), await numbers(0, 10), await numbers(1, 101)];
  if (first.length !== 10 || second.length !== 10) problems.push(`pages 1 and 2 of 10 listed ${first.length} and ${second.length} builds`);
  const both = [...first, ...second];
  if (both.some((n, i) => i > 0 && n >= both[i - 1]!)) problems.push(`pages 1 and 2 do not follow on newest first: #${both.join(', #')}`);
  if (zeroth.join() !== first.join()) problems.push('page 0 is not the first page');
  // Drone does not clamp to 100: it falls back to its default, so a reader asking 101 gets 25.
  if (over.length !== 25) problems.push(`per_page=101 listed ${over.length} builds, where Drone answers its default 25`);
  return problems;
}
