// Reads deploy/kubernetes/ as a cluster would: every YAML document checked against the
// Kubernetes object schema (kubernetes-models), then the promises docs/scale-out.md makes about
// the rehearsal Job checked as problems (pure, so a test can break a copy and see them named).
// Also expands a container's $(VAR) arguments as the kubelet does, so a test can run the pod's
// exact command line locally.

import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Job, type IJob } from 'kubernetes-models/batch/v1';
import { PersistentVolumeClaim, Pod, type IPersistentVolumeClaim, type IPod } from 'kubernetes-models/v1';

export const kubernetesDir = path.resolve(__dirname, '../../deploy/kubernetes');

export interface ManifestObject {
  file: string;
  /** Position of the document in its file, from 0. */
  index: number;
  object: Record<string, unknown>;
}

/** Every document of every .yaml/.yml file under dir; a YAML syntax error throws naming the file. */
export function loadManifests(dir: string = kubernetesDir): ManifestObject[] {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  return files.flatMap((file) => {
    const docs = parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'));
    if (!Array.isArray(docs)) return [];
    return docs
      .map((doc, index) => {
        if (doc.errors.length > 0) throw new Error(`${file}, document ${index + 1}: ${doc.errors.map((e) => e.message).join('; ')}`);
        return { file, index, object: doc.toJS() as Record<string, unknown> };
      })
      .filter((m) => m.object !== null && m.object !== undefined);
  });
}

// The kinds deploy/kubernetes/ uses; a new kind needs its model here, or schemaProblems says so.
const models: Record<string, (data: never) => { validate(): void }> = {
  'batch/v1 Job': (data) => new Job(data),
  'v1 PersistentVolumeClaim': (data) => new PersistentVolumeClaim(data),
  'v1 Pod': (data) => new Pod(data),
};

/**
 * The schema's complaints about one object ([] when valid), unknown fields included: the
 * schema itself accepts any extra key, so `readonly: true` (for readOnly) would pass it while
 * the cluster ignores it. The compiled validator reads every field it knows; a field it never
 * read is one it does not know.
 */
export function schemaProblems(object: Record<string, unknown>): string[] {
  const key = `${String(object.apiVersion)} ${String(object.kind)}`;
  const model = models[key];
  if (!model) return [`no schema for ${key}: add its kubernetes-models class to test/deploy/manifests.ts`];
  const instance = model(object as never);
  const read = new Set<string>();
  try {
    instance.validate.call(recordReads(instance, '', read));
  } catch (err) {
    return [(err as Error).message];
  }
  return unreadFields(object, '', read).map((at) => `${at}: not a field of ${key}`);
}

/** A view of value that notes every path read through it (and every key listed, as maps are). */
function recordReads(value: unknown, at: string, read: Set<string>): unknown {
  if (value === null || typeof value !== 'object') return value;
  return new Proxy(value, {
    get(target, property, receiver) {
      const got: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string') return got;
      read.add(`${at}/${property}`);
      return typeof got === 'function' ? got : recordReads(got, `${at}/${property}`, read);
    },
    ownKeys(target) {
      const keys = Reflect.ownKeys(target);
      for (const k of keys) if (typeof k === 'string') read.add(`${at}/${k}`);
      return keys;
    },
  });
}

function unreadFields(value: unknown, at: string, read: ReadonlySet<string>): string[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.keys(value).flatMap((k) => {
    const path = `${at}/${k}`;
    return read.has(path) ? unreadFields((value as Record<string, unknown>)[k], path, read) : [path];
  });
}

export function isJob(object: Record<string, unknown>): object is Record<string, unknown> & IJob {
  return object.apiVersion === 'batch/v1' && object.kind === 'Job';
}
export function isPod(object: Record<string, unknown>): object is Record<string, unknown> & IPod {
  return object.apiVersion === 'v1' && object.kind === 'Pod';
}
export function isClaim(object: Record<string, unknown>): object is Record<string, unknown> & IPersistentVolumeClaim {
  return object.apiVersion === 'v1' && object.kind === 'PersistentVolumeClaim';
}

/** The generator container's arguments: the one container of the Job's pod. */
export function shardArgs(job: IJob): string[] {
  return job.spec?.template.spec?.containers[0]?.args ?? [];
}

/** The value after a flag (`--out -` gives '-'), or undefined when the flag is absent. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}

/** The claim the model database comes from (model-volume.yaml). */
export const modelClaim = 'rehearse-model';

/**
 * What docs/scale-out.md promises of a rehearsal Job, as problems ([] when kept): one shard per
 * pod, all at once, no retries, the model read-only, and a command line that names its shard
 * count, the common start and where the result goes.
 */
export function jobProblems(job: IJob): string[] {
  const problems: string[] = [];
  const spec = job.spec;
  if (!spec) return ['the Job has no spec'];
  if (spec.completionMode !== 'Indexed') problems.push(`completionMode is ${String(spec.completionMode)}, not Indexed (the pods would not know their shard)`);
  if (typeof spec.completions !== 'number') problems.push('completions is not set');
  if (spec.parallelism !== spec.completions) problems.push(`parallelism ${String(spec.parallelism)} differs from completions ${String(spec.completions)} (shards would start late, one wave after another)`);
  if (spec.backoffLimit !== 0) problems.push(`backoffLimit is ${String(spec.backoffLimit)}, not 0 (a retried shard starts after --start-at)`);
  const pod = spec.template.spec;
  if (pod?.restartPolicy !== 'Never') problems.push(`restartPolicy is ${String(pod?.restartPolicy)}, not Never`);
  const containers = pod?.containers ?? [];
  if (containers.length !== 1) problems.push(`${containers.length} containers, not 1 (one generator process per pod)`);
  const container = containers[0];
  const args = container?.args ?? [];
  if (args[0] !== 'replay') problems.push(`the command is ${String(args[0])}, not replay`);
  const shard = flagValue(args, '--shard');
  if (shard !== `auto/${String(spec.completions)}`) problems.push(`--shard is ${String(shard)}, not auto/${String(spec.completions)} (N must equal completions)`);
  const startAt = flagValue(args, '--start-at');
  if (startAt === undefined || startAt.startsWith('--')) problems.push('--start-at is missing (shards would not start together)');
  const out = flagValue(args, '--out');
  if (out === undefined || (out !== '-' && out.startsWith('--'))) problems.push('--out is missing (the shard would write its result to a database nobody collects)');
  // The model: a volume from the model claim, read-only both in the pod's volume and the mount.
  const modelVolume = (pod?.volumes ?? []).find((v) => v.persistentVolumeClaim?.claimName === modelClaim);
  if (!modelVolume) {
    problems.push(`no volume from the ${modelClaim} claim`);
  } else {
    if (modelVolume.persistentVolumeClaim?.readOnly !== true) problems.push(`volume ${modelVolume.name} is not readOnly`);
    const mount = container?.volumeMounts?.find((m) => m.name === modelVolume.name);
    if (!mount) problems.push(`volume ${modelVolume.name} is not mounted`);
    else if (mount.readOnly !== true) problems.push(`${mount.mountPath} (the model) is mounted writable`);
    const db = flagValue(args, '--db');
    if (!mount || db === undefined || !db.startsWith(`${mount.mountPath.replace(/\/$/, '')}/`)) problems.push(`--db ${String(db)} is not on the model volume`);
  }
  // Every $(VAR) in the arguments must resolve, or the kubelet passes it on literally.
  const defined = new Set([...(container?.env ?? []).map((e) => e.name), 'JOB_COMPLETION_INDEX']);
  for (const arg of args) {
    for (const name of referencedVars(arg)) if (!defined.has(name)) problems.push(`$(${name}) in "${arg}" is not a variable of the container`);
  }
  return problems;
}

/** The names a Kubernetes argument refers to with $(NAME) ($$(NAME) is an escape, not a reference). */
export function referencedVars(arg: string): string[] {
  return [...arg.matchAll(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g)].flatMap((m) => (m[1] === undefined ? [] : [m[1]]));
}

/**
 * An argument as the kubelet passes it: $(NAME) replaced by the variable's value when defined,
 * left as is when not, and $$ an escaped $.
 */
export function expandKubernetesVars(arg: string, env: Readonly<Record<string, string>>): string {
  return arg.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(env, name) ? env[name]! : whole;
  });
}

/**
 * The pod's command line for shard `index`, as Kubernetes would run it: the Job's own literal env
 * values, overridden by `env` (START_AT, TARGET_URL...), and JOB_COMPLETION_INDEX as the Job
 * controller sets it. For a test that runs N local processes exactly as the pods would.
 */
export function podCommandLine(job: IJob, index: number, env: Readonly<Record<string, string>> = {}): { args: string[]; env: Record<string, string> } {
  const container = job.spec?.template.spec?.containers[0];
  const literal = Object.fromEntries((container?.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value] as const])));
  const all: Record<string, string> = { ...literal, ...env, JOB_COMPLETION_INDEX: String(index) };
  return { args: (container?.args ?? []).map((a) => expandKubernetesVars(a, all)), env: all };
}

export interface DockerInstruction {
  /** Upper-cased: FROM, RUN, USER... */
  keyword: string;
  rest: string;
  line: number;
}

/** A Dockerfile's instructions, continuation lines joined and comments dropped. */
export function readDockerfile(file: string): DockerInstruction[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const instructions: DockerInstruction[] = [];
  let pending: { text: string; line: number } | null = null;
  lines.forEach((raw, i) => {
    const text = raw.trim();
    if (pending === null && (text === '' || text.startsWith('#'))) return;
    if (pending !== null && text.startsWith('#')) return;
    const joined: { text: string; line: number } = pending ? { text: `${pending.text} ${text}`, line: pending.line } : { text, line: i + 1 };
    if (joined.text.endsWith('\\')) {
      pending = { text: joined.text.slice(0, -1).trimEnd(), line: joined.line };
      return;
    }
    pending = null;
    const [keyword = '', ...rest] = joined.text.split(/\s+/);
    instructions.push({ keyword: keyword.toUpperCase(), rest: rest.join(' '), line: joined.line });
  });
  return instructions;
}

/** The instructions of the last stage (the image that ships). */
export function finalStage(instructions: readonly DockerInstruction[]): DockerInstruction[] {
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}
