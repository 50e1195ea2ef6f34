import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../helpers/common/exec.ts';
import type { HostChannel } from '../../helpers/common/host.ts';
import { OFFLINE_NIX_CONFIG, compareClosures, type Closure, type ClosureEntry } from '../../helpers/nix/index.ts';
import { judgeSystems, type Systems } from './systems.ts';

const BUILT = '/nix/store/07d3k6rg1812d2jdx3g5jrdhlkggzrg4-nixos-system-cc-ci';
const OLD = '/nix/store/zyx8y0dgl4q40lzljgdvfczlh9nxpr5m-nixos-system-cc-ci';
const DEP = '/nix/store/p66jlz925hmn5yy1xdhm1sfni5rdmr92-dep-1.0';
const H1 = 'sha256-N7D8g9s08ghTD491fiTMwACK7pAkfWQGz3m0xQf8Zos=';
const H2 = 'sha256-gHeLibqoj5E67tSz/6y9NxLO3iDWJGV/UJdm4/aYa60=';

const entry = (path: string, narHash: string, references: string[] = []): ClosureEntry => ({ path, narHash, narSize: 1, references });
const closureOf = (root: string, depHash = H1): Closure => ({ root, where: 'x', entries: [entry(root, H2, [DEP]), entry(DEP, depHash)] });

/** A host whose path-info of each root gives `closures`, and whose diff-closures gives `diffClosures`. */
function fakeHost(closures: Record<string, Closure>, diffClosures: Partial<CommandResult>): HostChannel & { scripts: string[] } {
  const scripts: string[] = [];
  const run = async (script: string): Promise<CommandResult> => {
    scripts.push(script);
    const reply = (more: Partial<CommandResult>): CommandResult => ({ command: script, exitCode: 0, stdout: '', stderr: '', ...more });
    if (script.includes('diff-closures')) return reply(diffClosures);
    const root = Object.keys(closures).find((path) => script.includes(`path-info --json --recursive '${path}'`));
    if (root) return reply({ stdout: JSON.stringify(closures[root]!.entries) });
    return reply({ exitCode: 1, stderr: `unexpected: ${script}` });
  };
  return {
    name: 'fake',
    transport: 'fake',
    scripts,
    exec: run,
    succeed: run,
    fail: run,
    pushFile: async () => undefined,
    readFile: async () => Buffer.alloc(0),
  };
}

const same = (booted: string | undefined): Systems => ({ built: BUILT, running: BUILT, booted, diff: compareClosures(closureOf(BUILT), closureOf(BUILT)) });
const nix = { nixConfig: OFFLINE_NIX_CONFIG };

describe('judgeSystems: expected = current, booted recorded', () => {
  it('passes where the host has no /run/booted-system, and says so in the record', async () => {
    const host = fakeHost({}, {});
    const verdict = await judgeSystems(same(undefined), host, { narHashes: true, nix });
    expect(verdict.mismatches).toEqual([]);
    expect(verdict.attachments).toEqual([]);
    expect(verdict.record).toContain('booted (/run/booted-system on fake): none: fake has no /run/booted-system');
    expect(host.scripts).toEqual([]);
  });

  it('passes and records all three when they are one system', async () => {
    const verdict = await judgeSystems(same(BUILT), fakeHost({}, {}), { narHashes: true, nix });
    expect(verdict.mismatches).toEqual([]);
    expect(verdict.record.split('\n')).toEqual([
      `expected (clean-clone toplevel): ${BUILT}`,
      `current (/run/current-system on fake): ${BUILT}`,
      `booted (/run/booted-system on fake): ${BUILT} (= current)`,
    ]);
  });

  it('records a booted system that is not the current one (a switch without a reboot) and does not fail on it', async () => {
    const host = fakeHost({}, {});
    const verdict = await judgeSystems(same(OLD), host, { narHashes: true, nix });
    expect(verdict.mismatches).toEqual([]);
    expect(verdict.record).toContain(`booted (/run/booted-system on fake): ${OLD} (≠ current: switched since boot`);
    expect(host.scripts).toEqual([]);
  });

  it('fails on a build that is not the running system, in words the sabotage names, and says where diff-closures is missing', async () => {
    const systems: Systems = { built: OLD, running: BUILT, booted: undefined, diff: compareClosures(closureOf(OLD), closureOf(BUILT)) };
    const host = fakeHost({}, { exitCode: 1, stderr: "error: 'store' is not a recognised command\n" });
    const verdict = await judgeSystems(systems, host, { narHashes: false, nix });
    expect(verdict.mismatches).toHaveLength(1);
    // The cause lab/sabotage.ts gives c1-toplevel-from-other-base-commit.
    expect(verdict.mismatches[0]).toMatch(/clean-clone toplevel \/nix\/store\/\S+ ≠ \/run\/current-system/);
    expect(verdict.mismatches[0]).toContain(`1 only in clean-clone toplevel (first ${OLD})`);
    expect(verdict.attachments[0]!.text).toMatch(
      /nix store diff-closures: not shown \(.*on this machine.*; the Nix on fake has no `nix store diff-closures`\)/,
    );
  });

  it('holds narHashes to account only when asked (C1), not for D8, which compares paths', async () => {
    const systems: Systems = { built: BUILT, running: BUILT, booted: undefined, diff: compareClosures(closureOf(BUILT), closureOf(BUILT, H2)) };
    const host = fakeHost({}, { exitCode: 1, stderr: 'error: nope\n' });
    expect((await judgeSystems(systems, host, { narHashes: false, nix })).mismatches).toEqual([]);
    const c1 = await judgeSystems(systems, host, { narHashes: true, nix });
    expect(c1.mismatches).toEqual([
      `clean-clone toplevel ${BUILT} ≠ /run/current-system ${BUILT}: 0 only in clean-clone toplevel, 0 only in /run/current-system, 1 with a different narHash (first ${DEP})`,
    ]);
  });
});
