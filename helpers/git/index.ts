/**
 * Operator-side git: clones.ts makes the clones of the base and instance repos (fresh, or the
 * shared clone keyed by the remote's refs) and reads what a run's commits are; leak.ts searches
 * their history for secrets.
 */
export {
  operatorGitEnv,
  type Clone,
  commitInHistory,
  remoteHead,
  cloneRepo,
  remoteRefs,
  expectedCloneRefs,
  cloneCacheDir,
  sharedClone,
  type RunCommits,
  commitsOf,
} from './clones.ts';
