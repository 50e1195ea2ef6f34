/**
 * The forge (Gitea's API v1): client.ts reads pulls, comments and membership and makes the few
 * writes the specs make; writes.ts says which writes a run may make; contract.ts holds the HTTP
 * shapes relied on, checked against the lab's stand-in too.
 */
export { ForgeClient, type ForgeUser, type ForgeComment, type ForgePull } from './client.ts';
export { ForgeWriteRefused, forgeWriteRefusal, realForgeWrites, type ForgeWrite, type ForgeWriteScope } from './writes.ts';
