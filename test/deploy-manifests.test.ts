/**
 * The container and deployment files, checked as far as a machine without a container runtime or
 * a Kubernetes cluster allows (README "Containers and Kubernetes" says what is and is not covered):
 * - Dockerfile: parsed with dockerfile-ast; every path it copies exists; the runtime stage's files
 *   (and only those) are laid out in a folder and its real ENTRYPOINT + CMD and HEALTHCHECK run.
 * - Helm chart: rendered and linted by a real Helm binary (deploy/tools/fetch-helm.sh), every
 *   object checked against the Kubernetes API schemas (kubernetes-models), the rendered warden.yaml
 *   loaded by Warden's own config loader.
 * - Compose: parsed; its warden.yaml loaded by Warden's loader; haproxy.cfg checked by `haproxy -c`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config/load.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHART = join(ROOT, 'deploy/helm/warden');
const COMPOSE = join(ROOT, 'deploy/compose');
const HASH_KEY = Buffer.alloc(32, 7).toString('base64');

const scratch = mkdtempSync(join(tmpdir(), 'warden-deploy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A tool CI installs (.ci/run); elsewhere its tests are skipped with the way to get it. */
function requiredTool(path: string | undefined, howToGet: string): string | false {
  if (path !== undefined) return path;
  if (process.env.CI) assert.fail(`not found: ${howToGet}`);
  return false;
}

function findOnPath(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Stage {
  readonly name: string | null;
  readonly image: string | null;
  readonly instructions: Instruction[];
}

function readStages(): Stage[] {
  const dockerfile = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = dockerfile
        .getFROMs()
        .find((f) => f.getRange().start.line === instruction.getRange().start.line);
      stages.push({
        name: from?.getBuildStage() ?? null,
        image: from?.getImage() ?? null,
        instructions: [],
      });
    } else {
      assert.ok(stages.length > 0, `${instruction.getKeyword()} before the first FROM`);
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const DOCKERFILE_LINES = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n');

/** An instruction's whole text after its keyword, flags included, continuation lines joined. */
function argumentsOf(instruction: Instruction): string {
  const { start, end } = instruction.getRange();
  const text = DOCKERFILE_LINES.slice(start.line, end.line + 1)
    .join('\n')
    .replace(/\\\r?\n/g, ' ');
  return text.trim().slice(instruction.getKeyword().length).trim();
}

function only(stage: Stage, keyword: string): Instruction {
  const found = stage.instructions.filter((i) => i.getKeyword() === keyword);
  assert.equal(found.length, 1, `one ${keyword} in stage ${stage.name}`);
  return found[0]!;
}

/** An exec-form (JSON array) argument list, as Docker reads it. */
function execForm(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  assert.ok(
    Array.isArray(parsed) && parsed.every((p) => typeof p === 'string'),
    `exec form: ${text}`,
  );
  return parsed as string[];
}

/** COPY's sources and destination, its --from stage if any. */
function copyParts(instruction: Instruction): {
  from: string | undefined;
  sources: string[];
  dest: string;
} {
  const words = argumentsOf(instruction).split(/\s+/).filter(Boolean);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((w) => !w.startsWith('--'));
  assert.ok(
    paths.length >= 2,
    `COPY needs a source and a destination: ${argumentsOf(instruction)}`,
  );
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

describe('Dockerfile', () => {
  const stages = readStages();
  const build = stages.find((s) => s.name === 'build');
  const runtime = stages.at(-1)!;

  test('is multi-stage: a build stage and a slim Node 20 runtime on the same Debian release', () => {
    assert.ok(build, 'a stage named build');
    assert.ok(stages.length >= 2);
    assert.match(runtime.image ?? '', /^node:20-[a-z]+-slim$/);
    // The native better-sqlite3 addon is compiled in the build stage: same glibc at run time.
    assert.equal(build.image, runtime.image);
    const buildRuns = build.instructions
      .filter((i) => i.getKeyword() === 'RUN')
      .map(argumentsOf)
      .join('\n');
    for (const tool of ['python3', 'make', 'g++'])
      assert.match(buildRuns, new RegExp(`\\b${tool.replace('+', '\\+')}`));
    assert.match(buildRuns, /npm ci\b/);
    assert.match(buildRuns, /npm rebuild better-sqlite3/);
    assert.match(buildRuns, /npm run build/);
    assert.match(buildRuns, /npm prune --omit=dev/);
    assert.ok(
      !runtime.instructions.some(
        (i) => i.getKeyword() === 'RUN' && /npm|apt-get/.test(argumentsOf(i)),
      ),
      'the runtime stage installs nothing',
    );
  });

  test('runs as a non-root user, by number so that Kubernetes runAsNonRoot can check it', () => {
    const users = runtime.instructions.filter((i) => i.getKeyword() === 'USER');
    assert.ok(users.length > 0, 'a USER in the runtime stage');
    const user = argumentsOf(users.at(-1)!).trim();
    assert.match(user, /^\d+(:\d+)?$/);
    assert.notEqual(Number(user.split(':')[0]), 0);
    const userLine = users.at(-1)!.getRange().start.line;
    const entry = only(runtime, 'ENTRYPOINT');
    assert.ok(userLine < entry.getRange().start.line, 'USER comes before ENTRYPOINT');
  });

  test('copies into the build only paths that exist and that .dockerignore lets through', () => {
    const allowed = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    assert.ok(
      readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').includes('*'),
      'deny by default',
    );
    for (const copy of build!.instructions.filter((i) => i.getKeyword() === 'COPY')) {
      const { from, sources } = copyParts(copy);
      assert.equal(from, undefined);
      for (const source of sources) {
        assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
        assert.ok(
          allowed.includes(source.replace(/^\.\//, '').replace(/\/$/, '')),
          `${source} is not ignored`,
        );
      }
    }
  });

  test('the runtime stage copies package.json, node_modules and dist from the build, and they exist after npm run build', () => {
    const workdir = argumentsOf(only(runtime, 'WORKDIR')).trim();
    const copies = runtime.instructions.filter((i) => i.getKeyword() === 'COPY').map(copyParts);
    const copied = copies.map(({ from, sources }) => {
      assert.equal(from, 'build', 'everything comes from the build stage');
      assert.equal(sources.length, 1);
      return posix.relative(workdir, sources[0]!);
    });
    assert.deepEqual([...copied].sort(), ['dist', 'node_modules', 'package.json']);
    for (const path of copied)
      assert.ok(existsSync(join(ROOT, path)), `${path} exists (npm run build)`);
    const entry = execForm(argumentsOf(only(runtime, 'ENTRYPOINT')));
    assert.equal(entry[0], 'node');
    assert.ok(existsSync(join(ROOT, entry[1]!)), `${entry[1]} exists`);
    assert.equal(
      entry[1],
      (
        JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: { warden: string } }
      ).bin.warden.replace(/^\.\//, ''),
      'the entry point is the package bin',
    );
  });

  test('what dist imports at run time is a dependency, not a devDependency (npm prune --omit=dev keeps it)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const missing = new Set<string>();
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.js')) {
          const code = readFileSync(path, 'utf8');
          const imports = code.matchAll(
            /^(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"];|^import\s*['"]([^'"]+)['"];|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm,
          );
          for (const match of imports) {
            const specifier = (match[1] ?? match[2] ?? match[3])!;
            if (specifier.startsWith('.')) continue;
            if (specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
            const name = specifier.startsWith('@')
              ? specifier.split('/').slice(0, 2).join('/')
              : specifier.split('/')[0]!;
            if (!(name in pkg.dependencies)) missing.add(`${name} (${posix.relative(ROOT, path)})`);
          }
        }
      }
    };
    walk(join(ROOT, 'dist'));
    assert.deepEqual([...missing], []);
  });

  describe('the runtime stage, laid out without a container runtime', () => {
    test('its ENTRYPOINT and CMD start the gateway, and its HEALTHCHECK passes against /healthz', async () => {
      const workdir = argumentsOf(only(runtime, 'WORKDIR')).trim();
      // Only what the runtime stage copies: dist and package.json as files, node_modules linked
      // (dist's own package.json lookups, e.g. "type": "module", stay inside this folder).
      const app = join(scratch, 'app');
      mkdirSync(app);
      cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
      cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
      symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
      assert.equal(workdir, '/app');

      const cmd = execForm(argumentsOf(only(runtime, 'CMD')));
      const configAt = cmd.indexOf('--config');
      assert.equal(cmd[0], 'serve');
      assert.ok(configAt > 0, 'CMD names --config');
      const config = join(scratch, 'warden.yaml');
      writeFileSync(
        config,
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          `store: sqlite:${join(scratch, 'warden.db')}`,
          `audit: { hash_key_file: ${join(scratch, 'audit-hash.key')} }`,
          'auth: { resource: http://127.0.0.1/mcp, issuers: [{ builtin: {} }] }',
          'agents: { probe-bot: { roles: [] } }',
          'upstreams: { everything: { url: "http://127.0.0.1:9/mcp" } }',
        ].join('\n'),
      );
      const args = [...cmd];
      args[configAt + 1] = config;
      const entry = execForm(argumentsOf(only(runtime, 'ENTRYPOINT')));
      const gateway = spawn(
        entry[0] === 'node' ? process.execPath : entry[0]!,
        [...entry.slice(1), ...args],
        {
          cwd: app,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      try {
        const url = await listeningUrl(gateway);
        const healthcheck = healthcheckCommand(runtime);
        assert.equal(
          runHealthcheck(healthcheck, app, `${url}/healthz`),
          0,
          'healthy gateway passes',
        );
        // The check can fail: nothing listens on port 9 here.
        assert.notEqual(runHealthcheck(healthcheck, app, 'http://127.0.0.1:9/healthz'), 0);
        gateway.kill('SIGTERM');
        assert.equal(await exitOf(gateway), 0, 'SIGTERM stops it cleanly');
      } finally {
        if (gateway.exitCode === null) gateway.kill('SIGKILL');
      }
    });
  });
});

function healthcheckCommand(runtime: Stage): string[] {
  const text = argumentsOf(only(runtime, 'HEALTHCHECK'));
  const match = /(?:^|\s)CMD\s+(\[.*\])\s*$/.exec(text);
  assert.ok(match, `HEALTHCHECK [options] CMD [...]: ${text}`);
  const command = execForm(match[1]!);
  assert.equal(command[0], 'node', 'a slim image has no curl: Node itself checks');
  const env = runtime.instructions
    .filter((i) => i.getKeyword() === 'ENV')
    .map(argumentsOf)
    .join(' ');
  assert.match(env, /WARDEN_HEALTH_URL=http:\/\/127\.0\.0\.1:8080\/healthz/);
  return command;
}

function runHealthcheck(command: string[], cwd: string, url: string): number | null {
  const run = spawnSync(process.execPath, command.slice(1), {
    cwd,
    env: { ...process.env, WARDEN_HEALTH_URL: url },
    timeout: 10_000,
  });
  return run.status;
}

async function listeningUrl(child: ChildProcess): Promise<string> {
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "warden listening" within 20 s:\n${output}`)),
      20_000,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)".*"msg":"warden listening"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code}) before listening:\n${output}`));
    });
  });
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('did not exit within 15 s')), 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Helm chart

type Manifest = { kind: string; metadata: { name: string }; [key: string]: unknown };

const LOCAL_HELM = join(ROOT, 'node_modules/.cache/warden-deploy/helm');
const helm = requiredTool(
  process.env.WARDEN_HELM ?? (existsSync(LOCAL_HELM) ? LOCAL_HELM : findOnPath('helm')),
  'helm (bash deploy/tools/fetch-helm.sh puts one in node_modules/.cache/warden-deploy)',
);

function runHelm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(helm as string, args, {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      ...process.env,
      KUBECONFIG: join(scratch, 'no-cluster'),
      HELM_CACHE_HOME: join(scratch, 'helm-cache'),
      HELM_CONFIG_HOME: join(scratch, 'helm-config'),
      HELM_DATA_HOME: join(scratch, 'helm-data'),
    },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function setFlags(values: Record<string, string>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ['--set-string', `${key}=${value}`]);
}

function render(
  values: Record<string, string> = {},
  numbers: Record<string, number | boolean> = {},
): Manifest[] {
  const run = runHelm([
    'template',
    'demo',
    CHART,
    '--namespace',
    'mcp',
    ...setFlags({ 'secrets.auditHashKey': HASH_KEY, ...values }),
    ...Object.entries(numbers).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
  ]);
  assert.equal(run.status, 0, run.stderr);
  return parseAllDocuments(run.stdout)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function refusal(values: Record<string, string>, numbers: Record<string, number> = {}): string {
  const run = runHelm([
    'template',
    'demo',
    CHART,
    ...setFlags(values),
    ...Object.entries(numbers).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
  ]);
  assert.notEqual(run.status, 0, 'helm refuses to render');
  return run.stderr;
}

function one<T>(manifests: Manifest[], kind: string): T {
  const found = manifests.filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as T;
}

/** Checks an object against the Kubernetes API schema of its kind (types, required fields, enums). */
function validateAgainstApi(manifest: Manifest): void {
  const models: Record<string, new (data: never) => { validate(): void }> = {
    Deployment,
    Service,
    ConfigMap,
    Secret,
    PodDisruptionBudget,
    ServiceAccount,
  };
  const Model = models[manifest.kind];
  assert.ok(Model, `a known kind: ${manifest.kind}`);
  new Model(manifest as never).validate();
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
}
interface Container {
  args: string[];
  env: EnvVar[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { exec: { command: string[] } } };
  volumeMounts: { name: string; mountPath: string; subPath?: string }[];
  securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean };
}
interface DeploymentShape {
  metadata: { name: string };
  spec: {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds: number;
        securityContext: { runAsNonRoot: boolean; runAsUser: number };
        containers: Container[];
        volumes: {
          name: string;
          configMap?: { name: string };
          secret?: { secretName: string; items: { key: string; path: string }[] };
        }[];
      };
    };
  };
}

function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  assert.ok(match, `a duration: ${text}`);
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60 }[match[2] as 'ms' | 's' | 'm'];
}

describe(
  'Helm chart (deploy/helm/warden)',
  { skip: helm === false && 'no helm: bash deploy/tools/fetch-helm.sh' },
  () => {
    test('helm lint --strict passes', () => {
      const run = runHelm([
        'lint',
        '--strict',
        CHART,
        ...setFlags({ 'secrets.auditHashKey': HASH_KEY }),
      ]);
      assert.equal(run.status, 0, run.stdout + run.stderr);
    });

    test('renders a Deployment, Service, ConfigMap, Secret and PodDisruptionBudget that the Kubernetes API schemas accept', () => {
      const manifests = render();
      assert.deepEqual(manifests.map((m) => m.kind).sort(), [
        'ConfigMap',
        'Deployment',
        'PodDisruptionBudget',
        'Secret',
        'Service',
      ]);
      for (const manifest of manifests) validateAgainstApi(manifest);
    });

    test('the schema check catches a wrong type (so the check above can fail)', () => {
      const deployment = one<Manifest>(render(), 'Deployment');
      const broken = structuredClone(deployment) as unknown as DeploymentShape;
      (broken.spec as unknown as { replicas: string }).replicas = 'three';
      assert.throws(() => validateAgainstApi(broken as unknown as Manifest), /replicas/);
    });

    test('three replicas by default, each with its pod name as audit stream and replica id, and its pod IP as advertised URL', () => {
      const deployment = one<DeploymentShape>(render(), 'Deployment');
      assert.equal(deployment.spec.replicas, 3);
      const container = deployment.spec.template.spec.containers[0]!;
      const env = container.env;
      const index = (name: string) => env.findIndex((e) => e.name === name);
      const get = (name: string) => env[index(name)];
      assert.equal(get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
      assert.equal(get('POD_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
      assert.equal(get('WARDEN_AUDIT_STREAM')?.value, '$(POD_NAME)');
      assert.equal(get('WARDEN_REPLICA')?.value, '$(POD_NAME)');
      assert.equal(
        get('WARDEN_ADVERTISE_URL')?.value,
        `http://$(POD_IP):${container.ports[0]!.containerPort}`,
      );
      // Kubernetes expands $(VAR) only from variables defined earlier in the list.
      assert.ok(
        index('POD_NAME') < index('WARDEN_AUDIT_STREAM') &&
          index('POD_NAME') < index('WARDEN_REPLICA'),
      );
      assert.ok(index('POD_IP') < index('WARDEN_ADVERTISE_URL'));
      assert.equal(
        one<DeploymentShape>(render({}, { replicaCount: 5 }), 'Deployment').spec.replicas,
        5,
      );
    });

    test('readiness asks /readyz and liveness /healthz on the port Warden listens on', () => {
      const manifests = render();
      const deployment = one<DeploymentShape>(manifests, 'Deployment');
      const container = deployment.spec.template.spec.containers[0]!;
      assert.equal(container.readinessProbe.httpGet.path, '/readyz');
      assert.equal(container.livenessProbe.httpGet.path, '/healthz');
      const port = container.ports.find((p) => p.name === container.readinessProbe.httpGet.port);
      assert.ok(port, 'the probe names a declared port');
      assert.equal(container.livenessProbe.httpGet.port, port.name);
      const config = wardenConfigOf(manifests);
      assert.equal(config.listen.port, port.containerPort);
      assert.equal(config.listen.host, '0.0.0.0');
      const service = one<{ spec: { ports: { targetPort: string }[]; sessionAffinity: string } }>(
        manifests,
        'Service',
      );
      assert.equal(service.spec.ports[0]!.targetPort, port.name);
      assert.equal(service.spec.sessionAffinity, 'None');
    });

    test('the pod outlives preStop plus limits.shutdown_grace before it is killed', () => {
      for (const numbers of [{}, { shutdownGraceSeconds: 40, preStopSleepSeconds: 10 }]) {
        const manifests = render({}, numbers);
        const deployment = one<DeploymentShape>(manifests, 'Deployment');
        const preStop = deployment.spec.template.spec.containers[0]!.lifecycle.preStop.exec.command;
        assert.equal(preStop[0], 'sleep');
        const grace = parseDuration(wardenConfigOf(manifests).limits.shutdown_grace);
        assert.ok(
          deployment.spec.template.spec.terminationGracePeriodSeconds > Number(preStop[1]) + grace,
          `terminationGracePeriodSeconds ${deployment.spec.template.spec.terminationGracePeriodSeconds} > ${preStop[1]} + ${grace}`,
        );
      }
    });

    test("the rendered warden.yaml loads with Warden's own config loader, on the shared PostgreSQL store", () => {
      const manifests = render({ 'postgres.url': 'postgres://warden@db.example:5432/warden' });
      const raw = wardenConfigOf(manifests);
      const config = parseConfig(raw, 'configmap warden.yaml', '/etc/warden');
      assert.match(config.store, /^postgres:\/\/warden@db\.example:5432\/warden/);
      assert.equal(config.audit.hashKeyFile, '/etc/warden/secrets/audit-hash.key');
    });

    test("every replica mounts the one Secret's hash key where audit.hash_key_file points", () => {
      const manifests = render();
      const deployment = one<DeploymentShape>(manifests, 'Deployment');
      const keyFile = wardenConfigOf(manifests).audit.hash_key_file;
      const pod = deployment.spec.template.spec;
      const mount = pod.containers[0]!.volumeMounts.find((m) => m.mountPath === dirname(keyFile));
      assert.ok(mount, `a volume mounted at ${dirname(keyFile)}`);
      const volume = pod.volumes.find((v) => v.name === mount.name);
      const secret = one<{ metadata: { name: string }; data: Record<string, string> }>(
        manifests,
        'Secret',
      );
      assert.equal(volume?.secret?.secretName, secret.metadata.name);
      const item = volume.secret.items.find((i) => i.path === basename(keyFile));
      assert.ok(item, 'the key file is an item of the Secret volume');
      assert.equal(Buffer.from(secret.data[item.key]!, 'base64').toString(), HASH_KEY);
    });

    test('runs as non-root with a read-only root filesystem', () => {
      const pod = one<DeploymentShape>(render(), 'Deployment').spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.notEqual(pod.securityContext.runAsUser, 0);
      assert.equal(pod.containers[0]!.securityContext.allowPrivilegeEscalation, false);
      assert.equal(pod.containers[0]!.securityContext.readOnlyRootFilesystem, true);
    });

    test("the Service and the PodDisruptionBudget select exactly the Deployment's pods", () => {
      const manifests = render();
      const labels = one<DeploymentShape>(manifests, 'Deployment').spec.template.metadata.labels;
      const selects = (selector: Record<string, string>) =>
        Object.entries(selector).every(([k, v]) => labels[k] === v);
      const service = one<{ spec: { selector: Record<string, string> } }>(manifests, 'Service');
      const pdb = one<{
        spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable: number };
      }>(manifests, 'PodDisruptionBudget');
      assert.ok(selects(service.spec.selector));
      assert.ok(selects(pdb.spec.selector.matchLabels));
      assert.equal(pdb.spec.maxUnavailable, 1);
    });

    test('the PostgreSQL password and upstream credentials reach the pod from the Secret, not the ConfigMap', () => {
      const manifests = render({
        'secrets.postgresPassword': 'pg-pass',
        'secrets.upstreamCredentials.CRM_TOKEN': 'crm-pass',
      });
      const env = one<DeploymentShape>(manifests, 'Deployment').spec.template.spec.containers[0]!
        .env;
      const secret = one<{ metadata: { name: string }; data: Record<string, string> }>(
        manifests,
        'Secret',
      );
      for (const [name, key, value] of [
        ['PGPASSWORD', 'postgres-password', 'pg-pass'],
        ['CRM_TOKEN', 'CRM_TOKEN', 'crm-pass'],
      ] as const) {
        const ref = env.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
        assert.deepEqual({ name: ref?.name, key: ref?.key }, { name: secret.metadata.name, key });
        assert.equal(Buffer.from(secret.data[key]!, 'base64').toString(), value);
      }
      const configMap = JSON.stringify(one<Manifest>(manifests, 'ConfigMap'));
      assert.ok(
        !configMap.includes('pg-pass') &&
          !configMap.includes('crm-pass') &&
          !configMap.includes(HASH_KEY),
      );
    });

    test('with existingSecret, no Secret is rendered and the pod uses the named one', () => {
      const manifests = render({
        'secrets.existingSecret': 'warden-keys',
        'secrets.auditHashKey': '',
      });
      assert.ok(!manifests.some((m) => m.kind === 'Secret'));
      const pod = one<DeploymentShape>(manifests, 'Deployment').spec.template.spec;
      assert.ok(pod.volumes.some((v) => v.secret?.secretName === 'warden-keys'));
      assert.equal(
        pod.containers[0]!.env.find((e) => e.name === 'PGPASSWORD')?.valueFrom?.secretKeyRef?.name,
        'warden-keys',
      );
    });

    test('helm install --dry-run=client renders NOTES.txt with the Service to reach', () => {
      const run = runHelm([
        'install',
        'demo',
        CHART,
        '--dry-run=client',
        '--namespace',
        'mcp',
        ...setFlags({ 'secrets.auditHashKey': HASH_KEY }),
      ]);
      assert.equal(run.status, 0, run.stderr);
      const notes = run.stdout.slice(run.stdout.indexOf('NOTES:'));
      assert.match(notes, /http:\/\/demo-warden\.mcp\.svc\.cluster\.local:80\/mcp\/<upstream>/);
      assert.match(notes, /audit verify --config \/etc\/warden\/warden\.yaml/);
    });

    test('an optional ServiceAccount is rendered, valid, and used', () => {
      const manifests = render({}, { 'serviceAccount.create': true });
      const account = one<Manifest>(manifests, 'ServiceAccount');
      validateAgainstApi(account);
      const pod = one<DeploymentShape>(manifests, 'Deployment').spec.template.spec as unknown as {
        serviceAccountName: string;
      };
      assert.equal(pod.serviceAccountName, account.metadata.name);
    });

    test('refuses to render without a shared hash key, with a store other than the shared PostgreSQL, or with bad values', () => {
      assert.match(refusal({}), /secrets\.auditHashKey/);
      assert.match(refusal({ 'secrets.auditHashKey': 'too-short' }), /auditHashKey/);
      assert.match(
        refusal({ 'secrets.auditHashKey': HASH_KEY, 'config.store': 'sqlite:./x.db' }),
        /postgres\.url/,
      );
      assert.match(
        refusal({ 'secrets.auditHashKey': HASH_KEY, 'config.limits.shutdown_grace': '60s' }),
        /shutdownGraceSeconds/,
      );
      assert.match(
        refusal({ 'secrets.auditHashKey': HASH_KEY }, { replicaCount: 0 }),
        /replicaCount/,
      );
      assert.match(
        refusal({
          'secrets.auditHashKey': HASH_KEY,
          'postgres.url': 'postgres://warden:pw@db/warden',
        }),
        /postgres/,
      );
    });
  },
);

function wardenConfigOf(manifests: Manifest[]): {
  listen: { host: string; port: number };
  limits: { shutdown_grace: string };
  audit: { hash_key_file: string };
  [key: string]: unknown;
} {
  const configMap = one<{ data: Record<string, string> }>(manifests, 'ConfigMap');
  assert.ok(configMap.data['warden.yaml'], 'the ConfigMap holds warden.yaml');
  return parseYaml(configMap.data['warden.yaml']) as ReturnType<typeof wardenConfigOf>;
}

// ---------------------------------------------------------------------------------------------
// docker compose

interface ComposeService {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: unknown;
  ports?: string[];
  healthcheck?: unknown;
}

describe('docker compose example (deploy/compose)', () => {
  const compose = parseYaml(readFileSync(join(COMPOSE, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as {
    services: Record<string, ComposeService>;
  };
  const wardenYaml = parseYaml(readFileSync(join(COMPOSE, 'warden.yaml'), 'utf8')) as Parameters<
    typeof parseConfig
  >[0] & {
    listen: { port: number };
    audit: { hash_key_file: string };
  };
  const replicas = Object.entries(compose.services).filter(
    ([, s]) => s.environment?.WARDEN_REPLICA !== undefined,
  );

  test("its warden.yaml loads with Warden's own config loader, on PostgreSQL", () => {
    const config = parseConfig(wardenYaml, 'deploy/compose/warden.yaml', '/etc/warden');
    assert.match(config.store, /^postgres:\/\//);
    assert.equal(config.listen.host, '0.0.0.0');
    assert.equal(config.listen.port, 8080, 'the port the image HEALTHCHECK asks');
  });

  test('three replicas with distinct audit streams, replica ids and advertised URLs, all on one config and one hash key', () => {
    assert.equal(replicas.length, 3);
    for (const variable of ['WARDEN_AUDIT_STREAM', 'WARDEN_REPLICA', 'WARDEN_ADVERTISE_URL']) {
      assert.equal(
        new Set(replicas.map(([, s]) => s.environment?.[variable])).size,
        3,
        `${variable} differs per replica`,
      );
    }
    for (const [name, service] of replicas) {
      assert.equal(
        service.environment?.WARDEN_ADVERTISE_URL,
        `http://${name}:${wardenYaml.listen.port}`,
      );
      assert.ok(service.volumes?.includes('./warden.yaml:/etc/warden/warden.yaml:ro'));
      const keyVolume = service.volumes?.find(
        (v) => v.split(':')[1] === dirname(wardenYaml.audit.hash_key_file),
      );
      assert.ok(keyVolume, `${name} mounts the hash key's folder`);
      assert.ok(existsSync(join(COMPOSE, 'warden.yaml')));
      assert.ok(
        service.environment?.PGPASSWORD,
        'the PostgreSQL password comes from the environment',
      );
    }
    assert.equal(
      new Set(
        replicas.map(([, s]) =>
          s.volumes?.find((v) => v.includes(dirname(wardenYaml.audit.hash_key_file))),
        ),
      ).size,
      1,
      'one shared key volume',
    );
  });

  test('PostgreSQL is one service the replicas wait for, and the key is written before they start', () => {
    assert.match(compose.services.postgres?.image ?? '', /^postgres:/);
    for (const [, service] of replicas) {
      const deps = service.depends_on as Record<string, { condition: string }>;
      assert.equal(deps.postgres?.condition, 'service_healthy');
      assert.equal(deps['hash-key']?.condition, 'service_completed_successfully');
    }
  });

  const haproxy = requiredTool(
    findOnPath('haproxy'),
    'haproxy (apt-get install haproxy; .ci/run does)',
  );

  test('the proxy balances round robin over the three replicas with no affinity', () => {
    const proxy = Object.values(compose.services).find((s) =>
      s.volumes?.some((v) => v.startsWith('./haproxy.cfg:')),
    );
    assert.ok(proxy, 'a proxy service mounts haproxy.cfg');
    const cfg = readFileSync(join(COMPOSE, 'haproxy.cfg'), 'utf8');
    assert.match(cfg, /^\s*balance roundrobin$/m);
    assert.doesNotMatch(
      cfg,
      /^\s*(stick|cookie|hash-type|balance\s+(source|uri|url_param|hdr|rdp-cookie))/m,
      'no affinity of any kind',
    );
    const servers = [...cfg.matchAll(/^\s*server\s+\S+\s+([\w-]+):(\d+)/gm)].map(
      (m) => `${m[1]}:${m[2]}`,
    );
    assert.deepEqual(
      servers.sort(),
      replicas.map(([name]) => `${name}:${wardenYaml.listen.port}`).sort(),
    );
    assert.match(cfg, /option httpchk GET \/readyz/);
  });

  test(
    'haproxy -c accepts haproxy.cfg',
    { skip: haproxy === false && 'no haproxy (apt-get install haproxy)' },
    () => {
      const run = spawnSync(haproxy as string, ['-c', '-f', join(COMPOSE, 'haproxy.cfg')], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      // And it can fail: a config with a typo is refused.
      const broken = join(scratch, 'broken.cfg');
      writeFileSync(
        broken,
        readFileSync(join(COMPOSE, 'haproxy.cfg'), 'utf8').replace(
          'balance roundrobin',
          'balance roundrobbin',
        ),
      );
      assert.notEqual(
        spawnSync(haproxy as string, ['-c', '-f', broken], { timeout: 10_000 }).status,
        0,
      );
    },
  );
});
