/** Transitional: HostChannel moves to helpers/common/host.ts. */
export * from '../../target/host.ts';
