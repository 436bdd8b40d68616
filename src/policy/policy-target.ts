/**
 * What an operator's request is about, as an operator writes it (`payments.issue_payment`,
 * `docs:file:///a.md`) and as the policy engine takes it.
 */
import type { Config } from '../config/config.js';
import { OperationError } from '../domain/errors.js';
import type { PolicyAction } from './cedar-schema.js';
import type { PolicyRequest } from './policy-engine.js';

export type TargetKind = 'tool' | 'resource' | 'prompt';

export interface PolicyTarget {
  readonly action: PolicyAction;
  readonly upstream: string;
  readonly name: string;
  /** `payments.issue_payment`, `docs:file:///a.md`. */
  readonly label: string;
  readonly request: Pick<PolicyRequest, 'action' | 'upstream' | 'name'>;
}

/**
 * Reads `upstream.tool`, `upstream:uri` or `upstream.prompt`; throws OperationError
 * (OPERATION_INVALID) when the form is wrong or the upstream is not configured.
 */
export function parsePolicyTarget(
  kind: TargetKind,
  text: string,
  config: Pick<Config, 'upstreams'>,
): PolicyTarget {
  const separator = kind === 'resource' ? ':' : '.';
  const at = text.indexOf(separator);
  const upstream = at === -1 ? '' : text.slice(0, at);
  const name = text.slice(at + 1);
  if (upstream === '' || name === '') {
    throw new OperationError(
      'OPERATION_INVALID',
      `"${text}" is not ${kind === 'resource' ? '<upstream>:<uri>' : `<upstream>.<${kind}>`}`,
    );
  }
  if (!config.upstreams.has(upstream)) {
    throw new OperationError(
      'OPERATION_INVALID',
      `no upstream named "${upstream}" (configured: ${[...config.upstreams.keys()].join(', ') || 'none'})`,
    );
  }
  const action: PolicyAction =
    kind === 'tool' ? 'call_tool' : kind === 'resource' ? 'read_resource' : 'get_prompt';
  return { action, upstream, name, label: text, request: { action, upstream, name } };
}
