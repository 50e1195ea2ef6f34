/**
 * systemd on the host under test, read through a HostChannel: overall state, failed units,
 * unit properties, the reconcile oneshots' convergence and journal excerpts for report attachments.
 */
import { errorMessage, HarnessError } from '../common/errors.ts';
import type { CommandResult } from '../common/exec.ts';
import { redact } from '../common/redact.ts';
import { StateTimeoutError, waitFor, type ProbeTally } from '../common/wait.ts';
import { requireStarted, type HostChannel } from '../common/host.ts';

const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

function failure(host: HostChannel, result: CommandResult, what: string): HarnessError {
  return new HarnessError(redact(`${what} on ${host.name} failed (exit ${result.exitCode}): ${result.stderr.trim() || result.stdout.trim() || '(no output)'}`));
}

/**
 * `systemctl is-system-running`: running, degraded, starting, … It exits non-zero for every
 * state but running, so only an empty answer is an error.
 */
export async function systemState(host: HostChannel): Promise<string> {
  // Its stdout is read whatever the exit code, so a missing systemctl must not pass for a state.
  const result = requireStarted(await host.exec('systemctl is-system-running', { purpose: 'read the system state' }), host);
  const state = result.stdout.trim();
  if (!state) throw failure(host, result, 'systemctl is-system-running');
  return state;
}

/** Incus's refusals while a machine is not up: before a VM's agent runs, or while the instance (re)starts. */
const NOT_UP_YET = /VM agent isn't currently running|Instance is not running/i;

/**
 * Waits until systemd on `host` has finished booting (running or degraded), and returns which.
 * Incus refusing exec because the machine is not up yet counts as "not yet"; any other failure
 * of the channel ends the wait at once. `observes` says whose state a timeout reports (waitFor):
 * a throwaway's first boot is the harness's provisioning, a reboot the system's own.
 */
export async function waitBooted(
  host: HostChannel,
  what: string,
  { timeoutMs, observes = 'harness' }: { timeoutMs: number; observes?: 'harness' | 'system' },
): Promise<string> {
  return waitFor<string>(
    `${what} (ACCEPT_BOOT_TIMEOUT)`,
    async () => {
      const result = await host.exec('systemctl is-system-running').catch((error: unknown) => {
        if (NOT_UP_YET.test(errorMessage(error))) return undefined;
        throw error;
      });
      if (!result) return { done: false as const, saw: `${host.name} is not up yet` };
      const state = result.stdout.trim();
      return state === 'running' || state === 'degraded' ? state : { done: false as const, saw: state || result.stderr.trim() || '(no answer)' };
    },
    { timeoutMs, intervalMs: 500, observes },
  );
}

/** Names of the units systemd lists as failed; empty when none. */
export async function failedUnits(host: HostChannel): Promise<string[]> {
  const result = await host.exec('systemctl list-units --failed --no-legend --plain --no-pager', { purpose: 'list failed units' });
  if (result.exitCode !== 0) throw failure(host, result, 'systemctl list-units --failed');
  return result.stdout
    .split('\n')
    .map((line) => line.trim().replace(/^[●*×]\s*/, ''))
    .filter((line) => line !== '')
    .map((line) => line.split(/\s+/)[0]!);
}

/**
 * `Job` is the id of the unit's queued job: `systemctl show -p Job` prints `Job=` when none is
 * pending (asked for by name, systemctl shows a property even when it is empty).
 */
export const UNIT_PROPERTIES = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainStatus',
  'ExecMainExitTimestampMonotonic',
  'Type',
  'RemainAfterExit',
  'Job',
] as const;
export type UnitProperties = Record<(typeof UNIT_PROPERTIES)[number], string> & { unit: string };

/** Parses `systemctl show -p …` for one or more units: key=value blocks, blank-line separated. */
export function parseShow(stdout: string, units: readonly string[]): UnitProperties[] {
  const blocks = stdout
    .replace(/\r/g, '')
    .trim()
    .split(/\n\s*\n/)
    .filter((block) => block.trim() !== '');
  if (blocks.length !== units.length) {
    throw new HarnessError(`systemctl show gave ${blocks.length} blocks for ${units.length} units (${units.join(', ')})`);
  }
  return blocks.map((block, index) => {
    const values: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    }
    const props = { unit: units[index]! } as UnitProperties;
    for (const name of UNIT_PROPERTIES) props[name] = values[name] ?? '';
    return props;
  });
}

/** Properties of several units in one round trip, in the order asked. */
export async function unitsProperties(host: HostChannel, units: readonly string[]): Promise<UnitProperties[]> {
  if (units.length === 0) return [];
  const result = await host.exec(`systemctl show --no-pager -p ${UNIT_PROPERTIES.join(',')} -- ${units.map(shellQuote).join(' ')}`, {
    purpose: 'read unit properties',
  });
  if (result.exitCode !== 0) throw failure(host, result, `systemctl show ${units.join(' ')}`);
  return parseShow(result.stdout, units);
}

/** ActiveState, SubState, Result, ExecMainStatus, Type, RemainAfterExit (and Id, LoadState). */
export async function unitProperties(host: HostChannel, unit: string): Promise<UnitProperties> {
  return (await unitsProperties(host, [unit]))[0]!;
}

export function describeUnit(props: UnitProperties): string {
  return (
    `${props.unit}: ${props.ActiveState || '?'}/${props.SubState || '?'} result=${props.Result || '?'} status=${props.ExecMainStatus || '?'}` +
    ` type=${props.Type || '?'} remain-after-exit=${props.RemainAfterExit || '?'}${props.LoadState && props.LoadState !== 'loaded' ? ` load=${props.LoadState}` : ''}` +
    (props.Job ? ` job=${props.Job}` : '')
  );
}

/** Whether the unit's main process has run and exited since systemd started (0: never). */
function hasRun(props: UnitProperties): boolean {
  return Number(props.ExecMainExitTimestampMonotonic || '0') > 0;
}

/**
 * Converged, as systemd reports a oneshot: its run succeeded (Result=success, exit status 0).
 * One with RemainAfterExit=yes then stays active; one without goes back to inactive, having run.
 */
export function oneshotConverged(props: UnitProperties): boolean {
  if (props.Type !== 'oneshot' || props.Result !== 'success' || (props.ExecMainStatus || '0') !== '0') return false;
  if (props.RemainAfterExit === 'yes') return props.ActiveState === 'active';
  return props.ActiveState === 'inactive' && hasRun(props) && !props.Job;
}

/**
 * Why a unit can never converge as it stands, or undefined while it still might. As the NixOS
 * test driver's wait_for_unit does, a unit that failed, or is inactive with no job queued (and,
 * for one that does not remain after exit, never ran or did not succeed), is final: nothing is
 * going to start it.
 */
export function oneshotBroken(props: UnitProperties): string | undefined {
  if (props.LoadState && props.LoadState !== 'loaded') return `unit is ${props.LoadState}`;
  if (props.ActiveState === 'failed') return `unit failed (result ${props.Result || '?'}, exit status ${props.ExecMainStatus || '?'})`;
  // Static properties: waiting will not change them.
  if (props.Type && props.Type !== 'oneshot') return `Type=${props.Type}, not oneshot`;
  if (props.ActiveState === 'inactive' && !props.Job && !oneshotConverged(props)) {
    const ran = props.RemainAfterExit === 'yes' || hasRun(props) ? '' : ', and it never ran';
    return `unit is inactive/${props.SubState || '?'} with no job pending (result ${props.Result || '?'}, exit status ${props.ExecMainStatus || '?'}${ran}): nothing will start it`;
  }
  return undefined;
}

export interface BrokenUnit {
  unit: string;
  reason: string;
  properties: UnitProperties;
  journal: string;
}

export type OneshotReport = { converged: true; units: UnitProperties[] } | { converged: false; units: UnitProperties[]; broken: BrokenUnit[] };

/**
 * A FAIL: systemd answered, but time ran out while some units were still on their way (activating,
 * or with a job queued); `units` is the last state seen.
 */
export class OneshotTimeoutError extends StateTimeoutError {
  override readonly name = 'OneshotTimeoutError';
  constructor(
    description: string,
    waitedMs: number,
    readonly units: UnitProperties[],
    tally: ProbeTally,
  ) {
    // Whole list, not waitFor's 300-character summary: every unit's state is what the check observed.
    super(description, waitedMs, redact(`\n${units.map((unit) => `  ${oneshotConverged(unit) ? '✓' : '…'} ${describeUnit(unit)}`).join('\n')}`), tally);
  }
}

/**
 * Waits until every unit is a converged oneshot. Returns early with `converged: false` (and
 * each culprit's journal) as soon as one cannot converge: failed, inactive with no job pending,
 * missing, or of the wrong kind. Throws OneshotTimeoutError (FAIL), listing every unit's state,
 * if time runs out while they are still changing; a WaitTimeoutError (ERROR) if systemctl never
 * answered; and at once whatever non-transient error reading them throws.
 */
export async function waitForOneshots(
  host: HostChannel,
  units: readonly string[],
  options: { timeoutMs: number; intervalMs?: number; journalLines?: number },
): Promise<OneshotReport> {
  if (units.length === 0) throw new HarnessError('waitForOneshots needs at least one unit');
  const description = `oneshots ${units.join(', ')} to converge on ${host.name}`;
  let last: UnitProperties[] = [];
  type Outcome = { units: UnitProperties[]; broken: Array<{ props: UnitProperties; reason: string }> };
  let outcome: Outcome;
  try {
    outcome = await waitFor<Outcome>(
      description,
      async () => {
        last = await unitsProperties(host, units);
        const broken = last.flatMap((props) => {
          const reason = oneshotBroken(props);
          return reason ? [{ props, reason }] : [];
        });
        if (broken.length > 0 || last.every(oneshotConverged)) return { units: last, broken };
        return { done: false as const, saw: last.map(describeUnit).join('; ') };
      },
      { timeoutMs: options.timeoutMs, intervalMs: options.intervalMs ?? 2000, observes: 'system' },
    );
  } catch (error) {
    if (error instanceof StateTimeoutError) throw new OneshotTimeoutError(description, error.waitedMs, last, error);
    throw error;
  }
  if (outcome.broken.length === 0) return { converged: true, units: outcome.units };
  const broken: BrokenUnit[] = [];
  for (const { props, reason } of outcome.broken) {
    const journal = await journalExcerpt(host, props.unit, options.journalLines).catch(
      (error: unknown) => `(journal unavailable: ${(error as Error).message})`,
    );
    broken.push({ unit: props.unit, reason, properties: props, journal });
  }
  return { converged: false, units: outcome.units, broken };
}

/** The unit's last journal lines, ISO timestamps, with every registered secret redacted. */
export async function journalExcerpt(host: HostChannel, unit: string, lines = 30): Promise<string> {
  if (!Number.isInteger(lines) || lines <= 0) throw new HarnessError(`journal lines must be a positive integer, got ${lines}`);
  const result = await host.exec(`journalctl -u ${shellQuote(unit)} -n ${lines} --no-pager -o short-iso`, { purpose: `read the journal of ${unit}` });
  if (result.exitCode !== 0) throw failure(host, result, `journalctl -u ${unit}`);
  return redact(result.stdout.trimEnd());
}
