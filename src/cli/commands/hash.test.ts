import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache(
  "gyoza-cli-hash-",
  (path) => {
    dir = path;
  },
  { each: true },
);

const gyoza = (...args: string[]) => runCli(...args);

describe("gyoza hash", () => {
  it("prints a JSON array with file, size and every hash", async () => {
    const hello = join(dir, "hello.txt");
    await writeFile(hello, "hello world");
    const model = join(dir, "model.safetensors");
    const bytes = randomBytes(3 * 1024 * 1024);
    await writeFile(model, bytes);
    const { code, stdout } = await gyoza("hash", hello, model, "--json");
    expect(code).toBe(0);
    const [first, second] = JSON.parse(stdout);
    expect(first).toMatchObject({
      file: hello,
      size: 11,
      sha256: "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9",
      autoV1: null,
      autoV2: "B94D27B993",
      crc32: "0D4A1185",
      crc32Civitai: "85114A0D",
      a1111: { modelHash: "e3b0c442", shorthash: "b94d27b993" },
    });
    expect(Object.keys(first)).toEqual([
      "file",
      "size",
      "sha256",
      "autoV1",
      "autoV2",
      "autoV3",
      "autoV3Full",
      "blake3",
      "crc32",
      "crc32Civitai",
      "a1111",
    ]);
    const window = createHash("sha256").update(bytes.subarray(0x100000, 0x110000)).digest("hex");
    expect(second.autoV1).toBe(window.slice(0, 8).toUpperCase());
    expect(second.sha256).toBe(createHash("sha256").update(bytes).digest("hex").toUpperCase());
  });

  it("prints an aligned table with the Civitai forms and the A1111 ones beside them", async () => {
    const hello = join(dir, "hello.txt");
    await writeFile(hello, "hello world");
    const { code, stdout } = await gyoza("hash", hello);
    expect(code).toBe(0);
    expect(stdout).toContain(`${hello}  (11 B)`);
    expect(stdout).toContain("  AutoV2  B94D27B993    A1111 Model hash: b94d27b993");
    expect(stdout).toContain("  CRC32   85114A0D      as Civitai prints it; IEEE value 0D4A1185");
    expect(stdout).toContain(
      "  AutoV1  -             no Civitai AutoV1 under 2 MiB; A1111 legacy model_hash: e3b0c442",
    );
  });

  it("computes only the algorithms named in --algo", async () => {
    const hello = join(dir, "hello.txt");
    await writeFile(hello, "hello world");
    const { stdout } = await gyoza("hash", hello, "--json", "--algo", "CRC32, blake3");
    const [result] = JSON.parse(stdout);
    expect(Object.keys(result)).toEqual(["file", "size", "blake3", "crc32", "crc32Civitai"]);
  });

  it("uses the cache in $GYOZA_CACHE_DIR and bypasses it with --no-cache", async () => {
    const hello = join(dir, "hello.txt");
    await writeFile(hello, "hello world");
    await gyoza("hash", hello);
    expect((await gyoza("hash", hello)).stdout).toContain("(11 B, cached)");
    expect((await gyoza("hash", hello, "--no-hash-cache")).stdout).not.toContain("cached");
    const stored = JSON.parse(await readFile(join(dir, "cache", "hashes.json"), "utf8"));
    expect(Object.keys(stored.entries)).toHaveLength(1);
  });

  it("suggests the closest name for an unknown algorithm and exits with the usage code", async () => {
    const hello = join(dir, "hello.txt");
    await writeFile(hello, "hello world");
    const { code, stderr } = await gyoza("hash", hello, "--algo", "autov4");
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown hash algorithm "autov4"\nfix: did you mean "autov\d"\?/);
  });

  it("names a missing file and exits with 1", async () => {
    const missing = join(dir, "missing.ckpt");
    const { code, stderr } = await gyoza("hash", missing);
    expect(code).toBe(1);
    expect(stderr).toContain(`${missing}: no such file`);
  });
});
