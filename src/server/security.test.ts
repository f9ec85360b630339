import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type GyozaServer } from "./create-server.js";

let dir: string;
let server: GyozaServer;
let url: string;
let origin: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gyoza-serve-security-"));
  mkdirSync(join(dir, "models"));
  mkdirSync(join(dir, "outside"));
  writeFileSync(join(dir, "outside", "secret.safetensors"), "not for you");
  symlinkSync(join(dir, "outside"), join(dir, "models", "escape"));
  server = await createServer({ library: join(dir, "library.db"), roots: [join(dir, "models")] });
  url = await server.listen();
  origin = new URL(url).origin;
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = () => ({ Authorization: `Bearer ${server.token}` });

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${origin}${path}`, {
    method: "POST",
    headers: { ...auth(), "Content-Type": "application/json", ...headers },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** A raw HTTP request with a Host header fetch would not let us set. */
function rawGet(path: string, headers: Record<string, string>): Promise<number> {
  const { port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, headers }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", reject);
    request.end();
  });
}

describe("gyoza serve security", () => {
  it("binds 127.0.0.1 by default and prints a start URL carrying a random 24-byte token", async () => {
    const address = server.app.server.address();
    expect(typeof address === "object" && address?.address).toBe("127.0.0.1");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{32}$/);
    const other = await createServer({ library: join(dir, "other.db") });
    expect(other.token).not.toBe(server.token);
    expect(Buffer.from(other.token, "base64url")).toHaveLength(24);
    await other.close();
  });

  it("refuses every /api call without the token or with a wrong one, and takes it as a header or ?token=", async () => {
    expect((await fetch(`${origin}/api/health`)).status).toBe(401);
    expect((await fetch(`${origin}/api/health`, { headers: { Authorization: "Bearer wrong" } })).status).toBe(
      401,
    );
    expect((await fetch(`${origin}/api/health?token=${server.token}x`)).status).toBe(401);
    expect((await fetch(`${origin}/api/library/files`)).status).toBe(401);
    expect((await fetch(`${origin}/api/no-such-route`)).status).toBe(401);
    expect((await fetch(`${origin}/api/health`, { headers: auth() })).status).toBe(200);
    expect((await fetch(`${origin}/api/health?token=${server.token}`)).status).toBe(200);
    // The router decodes percent-escapes: an encoded /api path is still an /api call.
    expect((await fetch(`${origin}/%61pi/health`)).status).toBe(401);
    expect((await fetch(`${origin}/%61pi/library/files`)).status).toBe(401);
    const body = (await (await fetch(`${origin}/api/health`)).json()) as { error: { code: string } };
    expect(body.error.code).toBe("token");
  });

  it("refuses a non-loopback --host without --token", async () => {
    await expect(createServer({ library: join(dir, "open.db"), host: "0.0.0.0" })).rejects.toThrow(
      /without --token/,
    );
    const withToken = await createServer({
      library: join(dir, "open.db"),
      host: "0.0.0.0",
      token: "a-long-enough-secret-token",
    });
    expect(withToken.token).toBe("a-long-enough-secret-token");
    await withToken.close();
  });

  it("refuses paths outside the library roots and model folders with 403: absolute, ../ and a symlink escape", async () => {
    const inside = join(dir, "models", "missing.safetensors");
    for (const path of [
      "/etc/passwd",
      join(dir, "outside", "secret.safetensors"),
      "../outside/secret.safetensors",
      join(dir, "models", "..", "outside", "secret.safetensors"),
      join(dir, "models", "escape", "secret.safetensors"),
    ]) {
      for (const body of [
        { kind: "diff", a: path, b: inside },
        { kind: "recover", merged: inside, parents: [inside, path] },
        { kind: "parents", merged: inside, candidates: [inside, path] },
      ]) {
        const response = await post("/api/jobs", body);
        expect(response.status, `${body.kind} ${path}`).toBe(403);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe("forbidden-path");
      }
    }
    // A path inside is let through to the reader (the job then finds no file there).
    expect((await post("/api/jobs", { kind: "diff", a: inside, b: inside })).status).toBe(202);
  });

  it("refuses a recipe that reads or writes outside the allowed folders with 403", async () => {
    const yaml = (input: string, output: string) =>
      `gyoza: 1\ninputs:\n  a: { path: ${input} }\n  b: { path: ${input} }\nsteps:\n  m: { method: weighted_sum, inputs: { a: a, b: b }, alpha: 0.5 }\noutput: { path: ${output} }\n`;
    const inside = join(dir, "models", "x.safetensors");
    expect((await post("/api/jobs", { kind: "merge", yaml: yaml("/etc/passwd", inside) })).status).toBe(403);
    expect(
      (await post("/api/jobs", { kind: "merge", yaml: yaml(inside, "/tmp/evil.safetensors") })).status,
    ).toBe(403);
    expect((await post("/api/recipes/plan", { yaml: yaml(inside, "escape/out.safetensors") })).status).toBe(
      403,
    );
  });

  it("refuses a JSON body over 1 MiB and an image over 32 MiB with 413", async () => {
    const big = await post("/api/weights/parse", JSON.stringify({ text: "1".repeat(1024 * 1024 + 10) }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe("too-large");
    const image = new Uint8Array(32 * 1024 * 1024 + 1);
    const huge = await post("/api/images/inspect", image, { "Content-Type": "image/png" });
    expect(huge.status).toBe(413);
    const allowed = new Uint8Array(2 * 1024 * 1024);
    expect((await post("/api/images/inspect", allowed, { "Content-Type": "image/png" })).status).toBe(400);
  });

  it("sends no CORS headers, even to a preflight", async () => {
    const response = await fetch(`${origin}/api/health`, {
      headers: { ...auth(), Origin: "https://evil.example" },
    });
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${origin}/api/jobs`, {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("refuses a state-changing call from a foreign Origin, and accepts one from its own page", async () => {
    const foreign = await post("/api/weights/parse", { text: "0.5" }, { Origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe("forbidden-origin");
    expect((await post("/api/jobs/abc", {}, { Origin: "http://localhost.evil.example" })).status).toBe(403);
    expect((await post("/api/weights/parse", { text: "0.5" }, { Origin: origin })).status).toBe(200);
  });

  it("refuses a request whose Host is not the bound address (DNS rebinding)", async () => {
    const port = new URL(origin).port;
    expect(await rawGet(`/api/health?token=${server.token}`, { Host: `evil.example:${port}` })).toBe(403);
    expect(await rawGet("/", { Host: `evil.example:${port}` })).toBe(403);
    expect(await rawGet(`/api/health?token=${server.token}`, { Host: `127.0.0.1:${port}` })).toBe(200);
    expect(await rawGet(`/api/health?token=${server.token}`, { Host: `localhost:${port}` })).toBe(200);
  });

  it("sends no Referer with the token to linked sites, forbids framing and caching of API answers", async () => {
    for (const path of ["/", `/api/health?token=${server.token}`]) {
      const response = await fetch(`${origin}${path}`);
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect((await fetch(`${origin}/api/health`, { headers: auth() })).headers.get("cache-control")).toBe(
      "no-store",
    );
  });

  it("serves the app page without a token, and it says to build the client when dist/web is missing", async () => {
    const other = await createServer({ library: join(dir, "page.db"), webDir: join(dir, "no-web") });
    const page = await other.app.inject({ method: "GET", url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/npm run build/);
    await other.close();
  });
});
