/**
 * For unit tests: cc-ci's profile with names given as an operator would set them (the same
 * values the b1 profile suggests), so that no test leans on the lab's.
 */
import { loadConfig, type SystemNames } from '../helpers/common/config.ts';
import { ccciProfile, type SystemProfile } from './system-profile.ts';

export const EXAMPLE_NAMES: SystemNames = {
  oneshots: ['ccci-secrets.service', 'ccci-reconcile-swarm.service', 'ccci-reconcile-bridge.service'],
  d8Doc: 'docs/evidence/d8.md',
  buildParams: { recipe: 'RECIPE', pull: 'PR', comment: 'COMMENT_ID' },
  stageWords: { install: 'install', upgrade: 'upgrade', backupRestore: 'backup|restore', recipeTests: 'recipe|local', browser: 'browser|playwright' },
  enrolment: { list: 'tests/enrolled', tree: 'tests/{recipe}/', doc: 'docs/enroll.md' },
  runbookDoc: 'docs/runbook.md',
};

export function exampleProfile(env: Record<string, string> = {}): SystemProfile {
  return ccciProfile(EXAMPLE_NAMES, loadConfig(env).layout);
}
