import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

/**
 * A redis-server of the tests' own (and the throughput bench's): on a free port, its files in
 * `dir`, so a test can kill it and start it again on the same port and data. Never the user's Redis.
 */
export class RedisTestServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly persistent: boolean,
  ) {}

  /** Whether `redis-server` is on the PATH. */
  static available(): boolean {
    return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
  }

  /** Starts one; `persistent` keeps data across restarts (append-only file, fsync on every write). */
  static async start(dir: string, options: { persistent?: boolean } = {}): Promise<RedisTestServer> {
    const server = new RedisTestServer(await freePort(), dir, options.persistent ?? false);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const child = this.process;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts it again after `kill` (same port, same data when persistent). */
  async restart(): Promise<void> {
    if (this.running) throw new Error("redis-server is still running");
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", ""];
    args.push(
      ...(this.persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
    );
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.process = child;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) resolve();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code) =>
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)),
      );
      child.once("error", (error) =>
        reject(new Error(`cannot start redis-server (${error.message}); Debian: apt install redis-server`)),
      );
    });
  }

  /** SIGKILL: no goodbye to clients, as when a host dies. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}
