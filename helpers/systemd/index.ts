/**
 * systemd on the host under test, read through a HostChannel (units.ts): overall state, failed
 * units, unit properties, the reconcile oneshots' convergence, journal excerpts.
 */
export {
  systemState,
  waitBooted,
  failedUnits,
  UNIT_PROPERTIES,
  type UnitProperties,
  parseShow,
  unitsProperties,
  unitProperties,
  describeUnit,
  oneshotConverged,
  oneshotBroken,
  type BrokenUnit,
  type OneshotReport,
  OneshotTimeoutError,
  waitForOneshots,
  journalExcerpt,
} from './units.ts';
