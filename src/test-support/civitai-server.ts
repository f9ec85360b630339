import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildValidSafetensors } from "./build-safetensors.js";

/** The recorded answers (hand-written in Civitai's shape; see its README). */
export const CIVITAI_FIXTURES = fileURLToPath(new URL("../../test/fixtures/civitai/", import.meta.url));

/** An answer to serve: a JSON value, or raw text (to serve what is not JSON). */
export interface ServedAnswer {
  status?: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Sent in chunks with no Content-Length (the size shows only while reading). */
  chunked?: boolean;
}

/** What the next requests get instead of their answer: an error status, or the answer late. */
export type Fault = { status: number; retryAfter?: string; text?: string } | { delayMs: number };

export interface CivitaiServer {
  /** `http://127.0.0.1:PORT`: the client's base URL. */
  url: string;
  /** Paths requested, in order (faulted ones included). */
  readonly requests: string[];
  /** Request headers, in order. */
  readonly headers: IncomingHttpHeaders[];
  /** Serves `answer` at `path` from now on, in place of a recorded one. */
  route(path: string, answer: ServedAnswer): void;
  /** The next `times` requests (any path) get `fault`. */
  inject(fault: Fault, times: number): void;
  close(): Promise<void>;
}

/**
 * A local stand-in for civitai.com on 127.0.0.1 (a free port): serves the recorded model versions
 * by id and by any of their files' hashes (case-insensitive, as Civitai does), the recorded models
 * by id, Civitai's own 404 bodies for the rest, and faults on demand.
 */
export async function startCivitaiServer(fixtures: string = CIVITAI_FIXTURES): Promise<CivitaiServer> {
  const routes = new Map<string, ServedAnswer>();
  for (const name of await readdir(join(fixtures, "model-versions"))) {
    const version = JSON.parse(await readFile(join(fixtures, "model-versions", name), "utf8")) as {
      id: number;
      files: { hashes?: Record<string, string> }[];
    };
    routes.set(`/api/v1/model-versions/${version.id}`, { body: version });
    for (const file of version.files) {
      for (const hash of Object.values(file.hashes ?? {}))
        routes.set(`/api/v1/model-versions/by-hash/${hash.toUpperCase()}`, { body: version });
    }
  }
  for (const name of await readdir(join(fixtures, "models"))) {
    const model = JSON.parse(await readFile(join(fixtures, "models", name), "utf8")) as { id: number };
    routes.set(`/api/v1/models/${model.id}`, { body: model });
  }

  const faults: { fault: Fault; times: number }[] = [];
  const requests: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!;
    requests.push(path);
    headers.push(request.headers);
    const fault = faults[0];
    if (fault && --fault.times <= 0) faults.shift();
    const send = (answer: ServedAnswer): void => {
      const text = answer.text ?? JSON.stringify(answer.body);
      response.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers });
      if (answer.chunked) response.write(text);
      response.end(answer.chunked ? undefined : text);
    };
    const answer = (): void => {
      const lookup = path.replace(
        /^(\/api\/v1\/model-versions\/by-hash\/)(.*)$/,
        (_, head, hash) => `${head}${String(hash).toUpperCase()}`,
      );
      const found = routes.get(lookup);
      if (found) send(found);
      else if (path.startsWith("/api/v1/models/"))
        send({ status: 404, body: { error: `No model with id ${path.split("/").at(-1)}` } });
      else send({ status: 404, body: { error: "Model not found" } });
    };
    if (!fault) answer();
    else if ("delayMs" in fault.fault) setTimeout(answer, fault.fault.delayMs);
    else {
      const { status, retryAfter, text } = fault.fault;
      send({
        status,
        text: text ?? JSON.stringify({ error: "injected" }),
        headers: retryAfter === undefined ? {} : { "retry-after": retryAfter },
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    headers,
    route: (path, answer) => routes.set(path, answer),
    inject: (fault, times) => {
      if (times > 0) faults.push({ fault, times });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * The bytes of "gyozaTiny_v10.safetensors", the file the recorded model version 777001 lists: its
 * hashes in test/fixtures/civitai are this file's, so a lookup by file finds it end to end.
 */
export function tinyCivitaiModelBytes(): Uint8Array {
  return buildValidSafetensors(
    [{ key: "lora_unet_down_blocks_0_attentions_0_proj_in.alpha", dtype: "F32", shape: [], data: ALPHA_8 }],
    { ss_network_module: "networks.lora", ss_output_name: "gyozaTiny_v10" },
  );
}

const ALPHA_8 = new Uint8Array(new Float32Array([8]).buffer);
