/**
 * Why a policy did not load, every problem with its place. Its own module, so a command that
 * only reports it (the CLI) need not load the Cedar engine.
 */

/** A policy set that does not parse or validate: nothing of it is used. */
export class PolicyLoadError extends Error {
  readonly code = 'POLICY_LOAD_FAILED';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`the policy does not load:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PolicyLoadError';
    this.problems = problems;
  }
}
