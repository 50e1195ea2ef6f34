import { describe, expect, it } from 'vitest';
import { ConfigError } from '../helpers/common/errors.ts';
import type { IncusNetworkState, IncusProfile } from '../helpers/incus/client.ts';
import { pickAddress, requireProfiles, rootDiskOverride } from './vm-spec.ts';

const profile = (name: string, devices: IncusProfile['devices']): IncusProfile => ({ name, config: {}, devices });

describe('rootDiskOverride', () => {
  it("replaces the profiles' root disk whole, keeping its name and pool, with the size set", () => {
    const profiles = [
      profile('default', { root: { type: 'disk', path: '/', pool: 'default' }, eth0: { type: 'nic', network: 'incusbr0' } }),
      profile('vm-nixos', { root: { type: 'disk', path: '/', pool: 'ssd', 'io.bus': 'nvme' } }),
    ];
    // The later profile's device of the same name wins, as Incus expands them.
    expect(rootDiskOverride(profiles, '40GiB')).toEqual({ root: { type: 'disk', path: '/', pool: 'ssd', 'io.bus': 'nvme', size: '40GiB' } });
  });

  it('finds a root disk under any name', () => {
    expect(rootDiskOverride([profile('default', { system: { type: 'disk', path: '/', pool: 'p' } })], '20GiB')).toEqual({
      system: { type: 'disk', path: '/', pool: 'p', size: '20GiB' },
    });
  });

  it('refuses, naming both settings, when no profile has a root disk', () => {
    const call = () => rootDiskOverride([profile('bare', { data: { type: 'disk', path: '/data', pool: 'p' } })], '20GiB');
    expect(call).toThrow(ConfigError);
    expect(call).toThrow(/^ACCEPT_INCUS_ROOT_SIZE: none of the profiles bare \(ACCEPT_INCUS_PROFILES\) has a root disk/);
  });
});

describe('requireProfiles', () => {
  it('names every profile the project lacks', () => {
    expect(() => requireProfiles(['default', 'vm', 'gpu'], [profile('default', {}), undefined, undefined], 'terraform-ci')).toThrow(
      new ConfigError('ACCEPT_INCUS_PROFILES', 'names vm, gpu, not a profile in project terraform-ci; create it or fix the list'),
    );
    expect(requireProfiles(['default'], [profile('default', {})], 'terraform-ci')).toHaveLength(1);
  });
});

describe('pickAddress', () => {
  const nic = (hostName: string, ...addresses: [family: string, address: string, scope: string][]): IncusNetworkState => ({
    type: 'broadcast',
    host_name: hostName,
    addresses: addresses.map(([family, address, scope]) => ({ family, address, scope, netmask: '24' })),
  });
  // As a VM's agent reports it: loopback, the Incus NIC, and a bridge that Docker adds later.
  const network = {
    lo: { type: 'loopback', addresses: [{ family: 'inet', address: '127.0.0.1', scope: 'local' }] },
    docker0: nic('', ['inet', '172.17.0.1', 'global']),
    enp5s0: nic('tap1a2b3c', ['inet', '10.20.0.7', 'global'], ['inet6', 'fe80::1', 'link'], ['inet6', 'fd42::7', 'global']),
  };

  it('takes a global address of the family on the NIC Incus attached, before a guest-made bridge, never loopback or link-local', () => {
    expect(pickAddress(network, { family: 'inet' }).address).toBe('10.20.0.7');
    expect(pickAddress(network, { family: 'inet6' }).address).toBe('fd42::7');
    expect(pickAddress({ lo: network.lo }, { family: 'inet' }).address).toBeUndefined();
  });

  it('takes the named interface only', () => {
    expect(pickAddress(network, { family: 'inet', nic: 'docker0' }).address).toBe('172.17.0.1');
    expect(pickAddress(network, { family: 'inet', nic: 'enp5s0' }).address).toBe('10.20.0.7');
  });

  it('orders interfaces of the same kind by name', () => {
    expect(
      pickAddress({ eth1: nic('veth1', ['inet', '10.0.1.2', 'global']), eth0: nic('veth0', ['inet', '10.0.0.2', 'global']) }, { family: 'inet' }).address,
    ).toBe('10.0.0.2');
  });

  it('finds nothing, and says what it saw, before the agent reports addresses', () => {
    expect(pickAddress(null, { family: 'inet' })).toEqual({ saw: 'no global inet address yet; interfaces: none reported' });
    const onlyLinkLocal = pickAddress({ enp5s0: nic('tap0', ['inet6', 'fe80::1', 'link']) }, { family: 'inet6', nic: 'enp5s0' });
    expect(onlyLinkLocal.address).toBeUndefined();
    expect(onlyLinkLocal.saw).toBe('no global inet6 address on enp5s0 yet; interfaces: enp5s0: fe80::1 (inet6, link)');
  });

  it('waits on the named interface even when another has an address', () => {
    expect(pickAddress(network, { family: 'inet', nic: 'eth0' }).address).toBeUndefined();
  });
});
