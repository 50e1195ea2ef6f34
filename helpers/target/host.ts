export type { HostChannel, HostExecOptions } from '../common/host.ts';
export { incusChannel } from '../incus/channel.ts';
