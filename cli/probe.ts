// `rehearse probe`: one round trip against a target before a rehearsal, with every exchange shown
// and a hint for what to fix. Only parses flags and prints; the probe itself is replay/probe.ts.

import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { parseDuration } from '../core/duration.js';
import { ExitCode, UsageError } from '../core/errors.js';
import { parseHeaders } from '../replay/headers.js';
import { formatProbeReport, probeDefaults, probeTarget } from '../replay/probe.js';
import type { CommandContext } from './program.js';
import { addTargetOptions, collect, parseTargetOptions } from './target-flags.js';

interface ProbeFlags {
  target: string;
  protocol: string;
  targetOption: string[];
  header: string[];
  timeout: string;
  json?: boolean;
}

export function addProbeCommand(program: Command, ctx: CommandContext): Command {
  const command = program
    .command('probe')
    .description('Check a target before a rehearsal: publish one message on a throwaway topic, long-poll it back, show every exchange; exit 1 when it fails, 2 for bad flags.')
    .requiredOption('--target <url>', 'base URL of the bus, e.g. http://127.0.0.1:8080 (Bayeux: the mount URL, http://host:8000/faye)');
  return addTargetOptions(command)
    .option('--header <line>', "'Name: value' sent with every request (repeatable; 'Name: env:VAR' reads $VAR); values are never printed", collect, [])
    .option('--timeout <duration>', 'longest wait for the probe message, over all attempts', `${probeDefaults.timeoutMs / 1000}s`)
    .option('--json', 'print the report as one JSON object on stdout')
    .action(async (flags: ProbeFlags) => {
      // Every flag is checked before a byte is sent, and every problem reported at once.
      const problems: string[] = [];
      try {
        const u = new URL(flags.target);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`--target: must be an http(s) URL, got ${flags.target}`);
      } catch {
        problems.push(`--target: "${flags.target}" is not a URL (e.g. http://127.0.0.1:8080)`);
      }
      const { headers, problems: headerProblems } = parseHeaders(flags.header, ctx.io.env);
      const { options, problems: optionProblems } = parseTargetOptions(flags.targetOption);
      problems.push(...headerProblems, ...optionProblems);
      const timeoutMs = parseDuration(flags.timeout);
      if (timeoutMs === null || timeoutMs <= 0) problems.push(`--timeout: expected a duration like 10s or 1500ms, got '${flags.timeout}'`);
      if (problems.length > 0 || timeoutMs === null) {
        throw new UsageError(problems.length === 1 ? problems[0]! : `${problems.length} options are invalid:\n  ${problems.join('\n  ')}`);
      }
      const report = await probeTarget(
        {
          protocol: flags.protocol,
          url: flags.target,
          headers,
          options,
          // The probe aborts its own polls at the deadline; the bus may hold them as long as that.
          pollTimeoutS: Math.min(300, Math.max(1, Math.ceil(timeoutMs / 1000))),
          requestTimeoutMs: timeoutMs,
          publishConnections: 1,
        },
        { topicPrefix: `probe-${randomBytes(4).toString('hex')}`, timeoutMs },
      );
      if (flags.json === true) ctx.io.stdout.write(`${JSON.stringify(report)}\n`);
      else ctx.io.stdout.write(formatProbeReport(report, { headerNames: Object.keys(headers) }));
      ctx.setExitCode(report.ok ? ExitCode.ok : ExitCode.failed);
    });
}
