// Which protocol `--protocol` names: a built-in (v1, nchan, bayeux), a declarative profile
// (FILE.json, docs/targets.md) or a module implementing the Target interface (FILE.mjs). The one
// place a Target is built, for replay, demo and probe alike.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Dispatcher } from 'undici';
import { RehearseError, UsageError } from '../../core/errors.js';
import { header, statusFailure, TargetHttp, unreadable } from './http.js';
import { decodePayload, encodePayload, payloadValue } from './payload.js';
import { bayeuxProtocol } from './bayeux.js';
import { nchanProtocol } from './nchan.js';
import { v1Protocol } from './v1.js';
import type { Target, TargetContext, TargetFactory, TraceStep } from './types.js';

export type { Target, TargetSession, TargetFactory, TargetContext, TargetHelpers, OutgoingMessage, ReceivedMessage, PollOutcome, PublishOutcome, OpenOutcome, Failure, TraceStep } from './types.js';

const builtins: Record<string, TargetFactory> = {
  v1: v1Protocol,
  nchan: nchanProtocol,
  bayeux: bayeuxProtocol,
};

export const builtinProtocolNames = (): string[] => Object.keys(builtins);

export interface TargetSpec {
  /** A built-in name, or the path of a .json profile or .mjs/.js module. */
  protocol: string;
  url: string;
  headers: Readonly<Record<string, string>>;
  pollTimeoutS: number;
  requestTimeoutMs: number;
  publishConnections: number;
  options?: Readonly<Record<string, string>>;
  dispatcher?: Dispatcher;
  trace?: (step: TraceStep) => void;
}

/** Whether `--protocol` names a file rather than a built-in. */
export function isProtocolFile(protocol: string): boolean {
  return /\.(json|mjs|js)$/i.test(protocol);
}

/** The factory `--protocol` names; UsageError (exit 2) for an unknown name or a bad file. */
export async function loadProtocol(protocol: string): Promise<TargetFactory> {
  const builtin = builtins[protocol];
  if (builtin) return builtin;
  if (!isProtocolFile(protocol)) {
    throw new UsageError(`unknown protocol '${protocol}': use one of ${Object.keys(builtins).join(', ')}, a profile FILE.json or a module FILE.mjs (docs/targets.md)`, '--protocol');
  }
  if (/\.json$/i.test(protocol)) {
    const { loadProfile } = await import('./profile.js');
    return loadProfile(protocol);
  }
  return loadModule(protocol);
}

/** Builds the target; the protocol checks its --target-option keys here. */
export async function createTarget(spec: TargetSpec): Promise<Target> {
  const factory = await loadProtocol(spec.protocol);
  const options = spec.options ?? {};
  const known = factory.options ?? {};
  const unknown = Object.keys(options).filter((k) => !(k in known));
  if (unknown.length > 0) {
    const list = Object.keys(known);
    throw new UsageError(
      `protocol ${factory.protocol} has no option ${unknown.map((k) => `'${k}'`).join(', ')}${list.length ? ` (known: ${list.join(', ')})` : ' (it takes none)'}`,
      '--target-option',
    );
  }
  const http = new TargetHttp({
    url: spec.url,
    headers: spec.headers,
    pollTimeoutS: spec.pollTimeoutS,
    requestTimeoutMs: spec.requestTimeoutMs,
    publishConnections: spec.publishConnections,
    ...(spec.dispatcher ? { dispatcher: spec.dispatcher } : {}),
    ...(spec.trace ? { trace: spec.trace } : {}),
  });
  const ctx: TargetContext = {
    url: spec.url.replace(/\/+$/, ''),
    headers: spec.headers,
    pollTimeoutS: spec.pollTimeoutS,
    requestTimeoutMs: spec.requestTimeoutMs,
    publishConnections: spec.publishConnections,
    options,
    http,
    helpers: { encodePayload, payloadValue, decodePayload, statusFailure, unreadable, header },
    ...(spec.dispatcher ? { dispatcher: spec.dispatcher } : {}),
    ...(spec.trace ? { trace: spec.trace } : {}),
  };
  try {
    return await factory.create(ctx);
  } catch (err) {
    await http.close();
    if (err instanceof RehearseError) throw err;
    throw new RehearseError('REHEARSE_TARGET', `protocol ${factory.protocol} could not be set up: ${(err as Error).message}`, { cause: err });
  }
}

async function loadModule(file: string): Promise<TargetFactory> {
  const abs = path.resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const why = e.code === 'ERR_MODULE_NOT_FOUND' && (e.message ?? '').includes(abs) ? 'no such file' : (e.message ?? String(err));
    throw new UsageError(`cannot load the protocol module ${file}: ${why}`, '--protocol');
  }
  const candidate = (mod.default ?? mod) as Partial<TargetFactory>;
  if (typeof candidate.create !== 'function') {
    throw new UsageError(`${file} must export default { protocol, create(ctx) } (docs/targets.md, "A protocol module"); it exports ${Object.keys(mod).join(', ') || 'nothing'}`, '--protocol');
  }
  const name = typeof candidate.protocol === 'string' && candidate.protocol ? candidate.protocol : path.basename(file);
  return { protocol: `module:${name}`, ...(candidate.options ? { options: candidate.options } : {}), create: candidate.create.bind(candidate) };
}
