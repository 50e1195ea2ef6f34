/**
 * The Drone contract: the shape of a build's JSON (GET /api/repos/{owner}/{name}/builds/{n})
 * that the harness reads, checked against fixtures and against the lab's stand-in
 * (lab/base/services/drone.py). A stage's and a step's end is `stopped`: only the build has
 * `finished`, and DroneClient's normalise reads `stopped` as `finished` for the specs.
 */

/** Drone's statuses (core.Status…). */
export const DRONE_STATUSES = ['pending', 'running', 'success', 'failure', 'killed', 'error', 'skipped', 'blocked', 'declined', 'waiting_on_dependencies'] as const;

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
    if (!isObject(stage)) return problems.push(`stage ${s + 1} is not an object`);
    const where = `stage ${String(stage.name ?? s + 1)}`;
    problems.push(...unitDifferences(stage, where, ['number', 'exit_code', 'started'], 'stopped'));
    if (!Array.isArray(stage.steps)) return problems.push(`${where} has no steps list`);
    stage.steps.forEach((step: unknown, i) => {
      if (!isObject(step)) return problems.push(`${where} step ${i + 1} is not an object`);
      problems.push(...unitDifferences(step, `${where} step ${String(step.name ?? i + 1)}`, ['number', 'exit_code', 'started'], 'stopped'));
    });
  });
  return problems;
}
