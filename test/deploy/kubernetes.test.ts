// deploy/kubernetes/ without a cluster: every object against the Kubernetes schema, the rehearsal
// Job against what docs/scale-out.md promises, the Dockerfile against the package it builds, and
// the model-shipping recipe against a real read-only directory.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IJob } from 'kubernetes-models/batch/v1';
import { writeSyntheticModel } from '../plan/synthetic-db.js';
import {
  expandKubernetesVars,
  finalStage,
  flagValue,
  isClaim,
  isJob,
  isPod,
  jobProblems,
  kubernetesDir,
  loadManifests,
  modelClaim,
  podCommandLine,
  readDockerfile,
  schemaProblems,
  shardArgs,
} from './manifests.js';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');
const manifests = loadManifests();
const jobs = manifests.filter((m) => isJob(m.object));
const jobIn = (file: string): IJob => {
  const found = jobs.find((m) => m.file === file);
  if (!found) throw new Error(`no Job in deploy/kubernetes/${file}`);
  return found.object as unknown as IJob;
};

describe('deploy/kubernetes manifests against the Kubernetes object schema', () => {
  it('finds the files the docs name', () => {
    const files = new Set(manifests.map((m) => m.file));
    for (const f of ['job.yaml', 'job-results-volume.yaml', 'model-volume.yaml', 'results-volume.yaml']) expect(files).toContain(f);
    expect(jobs.map((j) => j.file).sort()).toEqual(['job-results-volume.yaml', 'job.yaml']);
  });

  it.each(manifests.map((m) => [`${m.file}#${m.index + 1} ${String(m.object.kind)}`, m] as const))('%s is valid', (_name, m) => {
    expect(schemaProblems(m.object)).toEqual([]);
  });

  it('rejects a Job whose parallelism is not an integer (the validator validates)', () => {
    const broken = structuredClone(jobIn('job.yaml')) as unknown as Record<string, unknown> & IJob;
    (broken.spec as unknown as Record<string, unknown>).parallelism = 'fifty';
    const problems = schemaProblems(broken);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/spec\/parallelism must be integer/);
  });

  it('rejects a field the schema does not know (which the schema alone would let through)', () => {
    const typo = structuredClone(jobIn('job.yaml')) as unknown as Record<string, unknown> & IJob;
    const mount = typo.spec!.template.spec!.containers[0]!.volumeMounts![0]! as unknown as Record<string, unknown>;
    delete mount.readOnly;
    mount.readonly = true;
    (typo.spec as unknown as Record<string, unknown>).parallelizm = 50;
    expect(schemaProblems(typo).sort()).toEqual([
      '/spec/parallelizm: not a field of batch/v1 Job',
      '/spec/template/spec/containers/0/volumeMounts/0/readonly: not a field of batch/v1 Job',
    ]);
  });

  it('rejects a Pod without containers, and a kind it has no schema for', () => {
    const pod = manifests.find((m) => isPod(m.object))!.object;
    const spec = { ...(pod.spec as Record<string, unknown>) };
    delete spec.containers;
    expect(schemaProblems({ ...pod, spec })[0]).toMatch(/containers/);
    expect(schemaProblems({ apiVersion: 'apps/v1', kind: 'Deployment' })[0]).toMatch(/no schema for apps\/v1 Deployment/);
  });

  it('every container runs the same image, so one `kubectl set image` per file keeps them together', () => {
    const images = manifests.flatMap((m) => {
      const podSpec = isJob(m.object) ? m.object.spec?.template.spec : isPod(m.object) ? m.object.spec : undefined;
      return (podSpec?.containers ?? []).map((c) => c.image);
    });
    expect(images.length).toBe(4);
    expect(new Set(images).size).toBe(1);
  });
});

describe('the rehearsal Job keeps what docs/scale-out.md promises', () => {
  it.each(jobs.map((j) => [j.file, j] as const))('%s: Indexed, completions = parallelism = N of --shard auto/N, no retries, model read-only', (_file, m) => {
    const job = m.object as unknown as IJob;
    expect(jobProblems(job)).toEqual([]);
    expect(job.spec?.completionMode).toBe('Indexed');
    expect(job.spec?.completions).toBe(50);
    expect(job.spec?.parallelism).toBe(50);
    expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
    const args = shardArgs(job);
    expect(flagValue(args, '--shard')).toBe('auto/50');
    expect(flagValue(args, '--start-at')).toBe('$(START_AT)');
    const container = job.spec!.template.spec!.containers[0]!;
    expect(container.volumeMounts?.find((v) => v.mountPath === '/model')?.readOnly).toBe(true);
    expect(container.resources?.limits?.['memory']).toBe('1Gi');
    expect(job.spec?.template.spec?.securityContext?.runAsNonRoot).toBe(true);
  });

  it('names each broken promise', () => {
    const broken = structuredClone(jobIn('job.yaml'));
    broken.spec!.completions = 40;
    broken.spec!.backoffLimit = 6;
    const container = broken.spec!.template.spec!.containers[0]!;
    container.volumeMounts!.find((v) => v.mountPath === '/model')!.readOnly = false;
    container.args = container.args!.map((a) => (a === '$(START_AT)' ? '$(START_ATT)' : a)).filter((a, i, all) => a !== '--out' && all[i - 1] !== '--out');
    const problems = jobProblems(broken);
    expect(problems).toEqual([
      'parallelism 50 differs from completions 40 (shards would start late, one wave after another)',
      'backoffLimit is 6, not 0 (a retried shard starts after --start-at)',
      '--shard is auto/50, not auto/40 (N must equal completions)',
      '--out is missing (the shard would write its result to a database nobody collects)',
      '/model (the model) is mounted writable',
      '$(START_ATT) in "$(START_ATT)" is not a variable of the container',
    ]);
  });

  it('the stdout Job prints its result; the volume Job writes it to a ReadWriteMany claim, one file per index and Job', () => {
    expect(flagValue(shardArgs(jobIn('job.yaml')), '--out')).toBe('-');
    const job = jobIn('job-results-volume.yaml');
    const out = flagValue(shardArgs(job), '--out')!;
    expect(out).toBe('/results/rehearse-$(JOB_UID)-shard-$(JOB_COMPLETION_INDEX).json');
    const pod = job.spec!.template.spec!;
    const mount = pod.containers[0]!.volumeMounts!.find((v) => out.startsWith(`${v.mountPath}/`))!;
    expect(mount.readOnly).not.toBe(true);
    const claimName = pod.volumes!.find((v) => v.name === mount.name)!.persistentVolumeClaim!.claimName;
    const claim = manifests.map((m) => m.object).find((o) => isClaim(o) && o.metadata?.name === claimName);
    expect(claim && isClaim(claim) ? claim.spec?.accessModes : undefined).toEqual(['ReadWriteMany']);
    const model = manifests.map((m) => m.object).find((o) => isClaim(o) && o.metadata?.name === modelClaim);
    expect(model && isClaim(model) ? model.spec?.accessModes : undefined).toEqual(['ReadWriteMany']);
  });

  it('the two Jobs differ only in where the result goes', () => {
    const strip = (job: IJob): IJob => {
      const copy = structuredClone(job);
      const pod = copy.spec!.template.spec!;
      const container = pod.containers[0]!;
      container.args = container.args!.map((a, i, all) => (all[i - 1] === '--out' ? '<out>' : a));
      container.env = container.env!.filter((e) => e.name !== 'JOB_UID');
      container.volumeMounts = container.volumeMounts!.filter((v) => v.name !== 'results');
      pod.volumes = pod.volumes!.filter((v) => v.name !== 'results');
      delete pod.securityContext!.fsGroup;
      return copy;
    };
    expect(strip(jobIn('job-results-volume.yaml'))).toEqual(strip(jobIn('job.yaml')));
  });

  it("expands a pod's arguments as the kubelet does (for running the shards locally)", () => {
    expect(expandKubernetesVars('$(A)-$(B)-$$(A)-$(MISSING)', { A: 'x', B: 'y' })).toBe('x-y-$(A)-$(MISSING)');
    const { args, env } = podCommandLine(jobIn('job-results-volume.yaml'), 7, { START_AT: '2026-09-01T08:00:00Z', JOB_UID: 'u1' });
    expect(env.JOB_COMPLETION_INDEX).toBe('7');
    expect(flagValue(args, '--start-at')).toBe('2026-09-01T08:00:00Z');
    expect(flagValue(args, '--target')).toBe('http://event-bus.example.internal:8080');
    expect(flagValue(args, '--out')).toBe('/results/rehearse-u1-shard-7.json');
    expect(args.join(' ')).not.toContain('$(');
  });
});

describe('docs/scale-out.md and the files it walks through', () => {
  const docs = fs.readFileSync(path.join(repo, 'docs/scale-out.md'), 'utf8');

  it('names every file under deploy/kubernetes/', () => {
    for (const file of fs.readdirSync(kubernetesDir)) expect(docs).toContain(file);
  });

  it('its commands name the Job, the container and the claims as the manifests do', () => {
    const job = jobIn('job.yaml');
    expect(job.metadata?.name).toBe('rehearse');
    expect(docs).toContain('batch.kubernetes.io/job-name=rehearse');
    expect(docs).toContain('job/rehearse');
    const container = job.spec!.template.spec!.containers[0]!;
    expect(docs).toContain(`--local -f deploy/kubernetes/job.yaml -c ${container.name}`);
    expect(docs).toContain(`set image --local -f - ${container.name}=`);
    for (const name of (container.env ?? []).filter((e) => e.value !== undefined).map((e) => e.name)) expect(docs).toContain(`${name}=`);
    const pods = manifests.map((m) => m.object).filter(isPod).map((p) => p.metadata!.name!);
    expect(pods.sort()).toEqual(['rehearse-model-loader', 'rehearse-results-reader']);
    for (const pod of pods) expect(docs).toContain(`${pod}:/`);
    expect(docs).toContain('/model-ro/model.db');
  });
});

describe('deploy/kubernetes/Dockerfile', () => {
  const dockerfile = readDockerfile(path.join(kubernetesDir, 'Dockerfile'));
  const shipped = finalStage(dockerfile);

  it('builds on Node 20 in two stages and ships the second', () => {
    const froms = dockerfile.filter((i) => i.keyword === 'FROM').map((i) => i.rest);
    expect(froms).toEqual(['node:20-bookworm-slim AS build', 'node:20-bookworm-slim']);
    expect(shipped.filter((i) => i.keyword === 'COPY').every((i) => i.rest.startsWith('--from=build '))).toBe(true);
  });

  it('runs as a numeric non-root user', () => {
    const users = shipped.filter((i) => i.keyword === 'USER').map((i) => i.rest);
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid)).toBeGreaterThan(0);
    // The Pods' runAsUser is the image's user.
    for (const m of manifests) {
      const podSpec = isJob(m.object) ? m.object.spec?.template.spec : isPod(m.object) ? m.object.spec : undefined;
      if (podSpec) expect(podSpec.securityContext?.runAsUser).toBe(Number(uid));
    }
  });

  it("its ENTRYPOINT is the package's rehearse bin", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const entrypoint = shipped.filter((i) => i.keyword === 'ENTRYPOINT').map((i) => JSON.parse(i.rest) as string[]);
    expect(entrypoint).toEqual([['node', `/app/${pkg.bin.rehearse}`]]);
  });

  it('copies every folder the build compiles (tsconfig.build.json)', () => {
    const build = JSON.parse(fs.readFileSync(path.join(repo, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const copied = dockerfile.filter((i) => i.keyword === 'COPY' && !i.rest.startsWith('--from')).map((i) => i.rest.split(/\s+/)[0]);
    for (const folder of build.include) expect(copied).toContain(folder);
  });
});

// The docs tell people to ship `sqlite3 model.db "VACUUM INTO 'model-ship.db'"`, because the pods
// mount the model read-only: rehearse writes its databases in WAL mode, and SQLite opens a WAL
// file only where it can create the -shm beside it. Here a directory the process cannot write
// stands for the read-only mount (as root, the process runs as another user: root writes anywhere).
/**
 * The built CLI and its production dependencies copied where another user can read them: as root
 * the test runs rehearse as nobody, who may not be able to reach the checkout (a CI checkout in a
 * 0700 temporary directory). The copy is what the image ships: package.json, dist/, prod deps.
 */
async function installFor(otherUser: string): Promise<string> {
  const app = path.join(otherUser, 'app');
  fs.cpSync(path.join(repo, 'dist'), path.join(app, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(app, 'package.json'));
  const { stdout } = await run('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: repo, maxBuffer: 16 * 1024 * 1024 });
  const top = path.join(repo, 'node_modules') + path.sep;
  for (const dep of stdout.split('\n').map((l) => l.trim())) {
    // Top-level packages only: a nested one comes with its parent's folder.
    if (!dep.startsWith(top) || dep.slice(top.length).includes(`${path.sep}node_modules${path.sep}`)) continue;
    fs.cpSync(dep, path.join(app, 'node_modules', dep.slice(top.length)), { recursive: true });
  }
  return path.join(app, 'dist/cli/bin.js');
}

describe('shipping the model for a read-only mount', () => {
  let bin = path.join(repo, 'dist/cli/bin.js');
  let dir = '';
  let modelDir = '';
  let asUser: { uid?: number; gid?: number } = {};

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rehearse-ship-'));
    modelDir = path.join(dir, 'model');
    fs.mkdirSync(modelDir);
    writeSyntheticModel(path.join(modelDir, 'model.db'), { classes: 4, seed: 3 });
    await run('sqlite3', [path.join(modelDir, 'model.db'), `VACUUM INTO '${path.join(modelDir, 'model-ship.db')}'`]);
    for (const f of fs.readdirSync(modelDir)) fs.chmodSync(path.join(modelDir, f), 0o444);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(modelDir, 0o555);
    if (process.getuid?.() === 0) {
      asUser = { uid: 65534, gid: 65534 };
      bin = await installFor(dir);
    }
  }, 60_000);
  afterAll(() => {
    fs.chmodSync(modelDir, 0o755);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const plan = (file: string) =>
    run(process.execPath, [bin, 'plan', '--db', path.join(modelDir, file), '--shard', '0/2', '--window', 'all', '--json'], { ...asUser, env: { ...process.env, HOME: dir } });

  it('the shipped copy is one file in rollback-journal mode, and a read-only rehearse opens it', async () => {
    const { stdout } = await run('sqlite3', [path.join(modelDir, 'model-ship.db'), 'PRAGMA journal_mode']);
    expect(stdout.trim()).toBe('delete');
    const summary = JSON.parse((await plan('model-ship.db')).stdout) as { learners: number };
    expect(summary.learners).toBeGreaterThan(0);
    expect(fs.readdirSync(modelDir).sort()).toEqual(['model-ship.db', 'model.db']);
  });

  it('the database ingest left (WAL mode) cannot be opened there: why the docs say to ship a copy', async () => {
    const err = (await plan('model.db').catch((e: unknown) => e)) as { code?: number; stderr?: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/model\.db: cannot open as a rehearse database \(attempt to write a readonly database\)/);
  });
});
