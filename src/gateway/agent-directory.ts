/**
 * The agent registry as the authenticator, the token endpoint and the built-in issuer read it: a
 * read-only map whose contents a reload replaces in one step, so an agent added to warden.yaml can
 * authenticate after SIGHUP and a removed one cannot, without a restart. Readers look agents up
 * at each request and never keep an entry, so none sees a half-replaced registry.
 */
import type { AgentConfig } from '../config/config.js';

export interface AgentDirectory extends ReadonlyMap<string, AgentConfig> {
  /** Puts `agents` in force in place of the registry so far. */
  replace(agents: ReadonlyMap<string, AgentConfig>): void;
}

export function createAgentDirectory(initial: ReadonlyMap<string, AgentConfig>): AgentDirectory {
  return new ReplaceableAgents(initial);
}

class ReplaceableAgents implements AgentDirectory {
  #current: ReadonlyMap<string, AgentConfig>;

  constructor(initial: ReadonlyMap<string, AgentConfig>) {
    this.#current = initial;
  }

  replace(agents: ReadonlyMap<string, AgentConfig>): void {
    this.#current = agents;
  }

  get size(): number {
    return this.#current.size;
  }

  get(id: string): AgentConfig | undefined {
    return this.#current.get(id);
  }

  has(id: string): boolean {
    return this.#current.has(id);
  }

  forEach(
    callback: (agent: AgentConfig, id: string, map: ReadonlyMap<string, AgentConfig>) => void,
  ): void {
    for (const [id, agent] of this.#current) callback(agent, id, this);
  }

  entries(): MapIterator<[string, AgentConfig]> {
    return this.#current.entries();
  }

  keys(): MapIterator<string> {
    return this.#current.keys();
  }

  values(): MapIterator<AgentConfig> {
    return this.#current.values();
  }

  [Symbol.iterator](): MapIterator<[string, AgentConfig]> {
    return this.#current[Symbol.iterator]();
  }
}
