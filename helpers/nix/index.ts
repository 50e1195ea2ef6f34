/**
 * Operator-side Nix: toplevel.ts builds the cc-ci toplevel from a flake or a clean clone and reads
 * the systems a host runs; closure.ts reads closures (locally or on the host under test) and
 * compares them path by path and NAR hash by NAR hash; command.ts is how Nix is run.
 */
export { OFFLINE_NIX_CONFIG, type NixOptions } from './command.ts';
export {
  toplevelAttr,
  NixBuildError,
  type BuildToplevelOptions,
  buildToplevel,
  type CleanCloneBuild,
  buildToplevelFromCleanClone,
  currentSystem,
  bootedSystem,
} from './toplevel.ts';
export {
  type ClosureEntry,
  type Closure,
  decodeNix32,
  normaliseHash,
  parsePathInfo,
  closure,
  closureHash,
  type ClosureDiff,
  compareClosures,
  diffClosures,
  type DiffClosuresOutcome,
  diffClosuresFailure,
  diffClosuresOnHost,
  diffClosuresWherever,
  formatClosureDiff,
} from './closure.ts';
