import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A stand-in for a user's HTTP scoring server (aesthetic predictor, ImageReward) speaking gyoza's
 * protocol (src/automix/SCORERS.md), on 127.0.0.1 at a free port. Each image's score is its mean
 * pixel brightness mapped to [-2, 2] (dark images score negative, like ImageReward's), decoded with
 * sharp: deterministic, and it really reads the PNG. Faults can be injected for the next requests.
 */
export type ScorerFault =
  | { status: number; text?: string }
  | { delayMs: number }
  | { text: string }
  | { body: unknown };

export interface ScorerStandIn {
  /** `http://127.0.0.1:PORT/score` */
  readonly url: string;
  /** Number of requests received (faulted ones included) and images per request. */
  readonly requests: number[];
  inject(fault: ScorerFault, times: number): void;
  close(): Promise<void>;
}

/** Brightness in [0, 1] → score in [-2, 2]. */
export async function standInScore(png: Buffer): Promise<number> {
  const sharp = (await import("sharp")).default;
  const stats = await sharp(png).removeAlpha().stats();
  const mean = stats.channels.reduce((sum, channel) => sum + channel.mean, 0) / stats.channels.length;
  return (mean / 255) * 4 - 2;
}

export async function startScorerStandIn(): Promise<ScorerStandIn> {
  const requests: number[] = [];
  const faults: ScorerFault[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      void (async () => {
        const fault = faults.shift();
        let images: { png: string; prompt: string; seed: number }[] = [];
        try {
          images = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { images: typeof images }).images;
        } catch {
          response.writeHead(400).end("not JSON");
          return;
        }
        requests.push(images.length);
        if (fault && "delayMs" in fault) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        else if (fault && "status" in fault) {
          response.writeHead(fault.status, { "content-type": "text/plain" }).end(fault.text ?? "fault");
          return;
        } else if (fault && "text" in fault) {
          response.writeHead(200, { "content-type": "application/json" }).end(fault.text);
          return;
        } else if (fault && "body" in fault) {
          response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(fault.body));
          return;
        }
        try {
          const scores = await Promise.all(
            images.map((image) => standInScore(Buffer.from(image.png, "base64"))),
          );
          response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ scores }));
        } catch (error) {
          response
            .writeHead(422, { "content-type": "text/plain" })
            .end(`unreadable image: ${(error as Error).message}`);
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/score`,
    requests,
    inject(fault, times) {
      for (let i = 0; i < times; i++) faults.push(fault);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
