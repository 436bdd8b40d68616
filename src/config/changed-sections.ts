/**
 * Which top-level sections of warden.yaml differ between the config a gateway started with and a
 * newly read one, so a reload can say plainly what it put in force and what waits for a restart.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config } from './config.js';

export type ConfigSection = Exclude<keyof Config, 'source'>;

/** What a reload (SIGHUP) puts in force; any other change needs a restart. */
export const RELOADED_SECTIONS: readonly ConfigSection[] = ['policy', 'agents'];

/** Every section, in the order of warden.yaml; a Record, so a new section cannot be forgotten. */
const SECTIONS_IN_FILE_ORDER: Readonly<Record<ConfigSection, true>> = {
  environment: true,
  listen: true,
  store: true,
  log: true,
  limits: true,
  upstreams: true,
  auth: true,
  audit: true,
  cluster: true,
  agents: true,
  policy: true,
  approvals: true,
  metrics: true,
  alerts: true,
};
const SECTIONS = Object.keys(SECTIONS_IN_FILE_ORDER) as ConfigSection[];

/** The sections of `loaded` that differ from `running`, in the order of warden.yaml. */
function listChangedSections(running: Config, loaded: Config): ConfigSection[] {
  return SECTIONS.filter((section) => !isDeepStrictEqual(running[section], loaded[section]));
}

/** The changed sections a reload does not apply. */
export function listSectionsNeedingRestart(running: Config, loaded: Config): ConfigSection[] {
  return listChangedSections(running, loaded).filter(
    (section) => !RELOADED_SECTIONS.includes(section),
  );
}
