/**
 * What the incus settings add to a throwaway beyond image, type and memory: its profiles, a
 * root-disk size, and which of its addresses the harness dials. Pure, so each rule is tested.
 */
import type { IncusSettings } from '../helpers/common/config.ts';
import { ConfigError } from '../helpers/common/errors.ts';
import type { IncusNetworkState, IncusProfile } from '../helpers/incus/client.ts';

type Device = Record<string, string>;

/**
 * The root disk with ACCEPT_INCUS_ROOT_SIZE, as an instance device of the same name as the
 * profiles' root disk (a later profile's device of that name wins, as in Incus), so that it
 * replaces theirs and keeps its pool. Incus has no size-only override: a device is whole.
 */
export function rootDiskOverride(profiles: readonly IncusProfile[], size: string): Record<string, Device> {
  const devices: Record<string, Device> = {};
  for (const profile of profiles) Object.assign(devices, profile.devices);
  const root = Object.entries(devices).find(([, device]) => device.type === 'disk' && device.path === '/');
  if (!root) {
    throw new ConfigError(
      'ACCEPT_INCUS_ROOT_SIZE',
      `none of the profiles ${profiles.map((profile) => profile.name).join(', ')} (ACCEPT_INCUS_PROFILES) has a root disk (a disk device with path /) to resize; add one to a profile, or unset ACCEPT_INCUS_ROOT_SIZE`,
    );
  }
  const [name, device] = root;
  return { [name]: { ...device, size } };
}

/** Every profile of ACCEPT_INCUS_PROFILES must exist in the project: checked before anything is created. */
export function requireProfiles(names: readonly string[], found: readonly (IncusProfile | undefined)[], project: string): IncusProfile[] {
  const missing = names.filter((_, index) => !found[index]);
  if (missing.length)
    throw new ConfigError('ACCEPT_INCUS_PROFILES', `names ${missing.join(', ')}, not a profile in project ${project}; create it or fix the list`);
  return found as IncusProfile[];
}

export type AddressChoice = IncusSettings['address'];

/**
 * The address to dial, from the instance's state: a global address of the chosen family, on the
 * chosen interface, or else on the first interface other than loopback that has one. Interfaces
 * Incus attached (they carry the host-side `host_name`) come first, so a bridge made inside the
 * guest (docker0) is not taken for the VM's own; then by name. A VM's state lists addresses only
 * once its agent runs; until then this finds none.
 */
export function pickAddress(network: Record<string, IncusNetworkState> | null | undefined, choice: AddressChoice): { address?: string; saw: string } {
  const interfaces = Object.entries(network ?? {})
    .filter(([name, state]) => name !== 'lo' && state.type !== 'loopback')
    .sort(([a, stateA], [b, stateB]) => Number(!stateA.host_name) - Number(!stateB.host_name) || (a < b ? -1 : a > b ? 1 : 0));
  const candidates = choice.nic === undefined ? interfaces : interfaces.filter(([name]) => name === choice.nic);
  for (const [, state] of candidates) {
    const found = state.addresses?.find((address) => address.family === choice.family && address.scope === 'global');
    if (found) return { address: found.address, saw: found.address };
  }
  const seen = interfaces.map(
    ([name, state]) =>
      `${name}: ${(state.addresses ?? []).map((address) => `${address.address} (${address.family}, ${address.scope})`).join(', ') || 'no address'}`,
  );
  const wanted = `global ${choice.family} address${choice.nic ? ` on ${choice.nic}` : ''}`;
  return { saw: `no ${wanted} yet; interfaces: ${seen.join('; ') || 'none reported'}` };
}
