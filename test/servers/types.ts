// A real bus server started by a test, in the foreground, on 127.0.0.1 and a free port, and
// stopped by its pid. One shape for every protocol, so one conformance suite runs against all.

export interface TargetServer {
  /** What `--target` takes, e.g. http://127.0.0.1:40123 or http://127.0.0.1:40123/faye. */
  url: string;
  /** What `--protocol` takes for it. */
  protocol: string;
  /** What `--target-option` takes for it (paths etc.). */
  targetOptions: Record<string, string>;
  /** Process id of the server (stop() kills it). */
  pid: number;
  /** Kills the server and starts it again on the same port: everything it held is gone. */
  restart(): Promise<void>;
  /** Kills the server and waits for the process to exit. */
  stop(): Promise<void>;
  /** Messages the server says it accepted since it (re)started, from its own counters. */
  publishedCount(): Promise<number>;
}
