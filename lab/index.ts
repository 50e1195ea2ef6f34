/**
 * The embedded lab's front door: lifecycle.ts brings it up (idempotently), down and reports its
 * status, with its settings and worker projects.
 */
export {
  type LabSettings,
  labSettings,
  ensureLabTools,
  labUp,
  workerProjects,
  ensureWorkerProjects,
  labDown,
  type StatusLine,
  labStatus,
  labGeneration,
  labIsUp,
} from './lifecycle.ts';
