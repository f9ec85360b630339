import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GyozaError, type GyozaErrorCode } from "../../errors.js";
import { FileByteSource } from "../byte-source.js";
import { interpretPickle } from "../pickle/index.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { parseTorchFile } from "./parse-torch-file.js";
import { FIXTURE_DIR, fixtureExpectation, fixtureNames } from "./test-support/fixture-support.js";

/** Hostile files must be refused within this time (they are at most 200 KB). */
const FAST_MS = 500;
/** What the payloads write if they ever run. */
const PWNED = "/tmp/PWNED";

interface Rejection {
  file: string;
  because: string;
  code: GyozaErrorCode;
  message: RegExp;
  path?: string;
}

const rejections: Rejection[] = [
  {
    file: "mal_os_system.pkl",
    because: "it calls os.system",
    code: "unsafe-pickle",
    message: /\bos\.system\b/,
  },
  {
    file: "mal_posix_system_zip.ckpt",
    because: "its data.pkl calls posix.system",
    code: "unsafe-pickle",
    message: /\bposix\.system\b/,
  },
  {
    file: "mal_builtins_eval.pkl",
    because: "it calls builtins.eval",
    code: "unsafe-pickle",
    message: /\bbuiltins\.eval\b/,
  },
  {
    file: "mal_builtins_exec_zip.ckpt",
    because: "it names __builtin__.exec",
    code: "unsafe-pickle",
    message: /__builtin__\.exec\b/,
  },
  {
    file: "mal_builtins_import_legacy.ckpt",
    because: "its main pickle calls builtins.getattr(__import__)",
    code: "unsafe-pickle",
    message: /\bbuiltins\.getattr\b/,
  },
  {
    file: "mal_subprocess_popen_zip.ckpt",
    because: "it calls subprocess.Popen",
    code: "unsafe-pickle",
    message: /\bsubprocess\.Popen\b/,
  },
  {
    file: "mal_runpy_run_code.pkl",
    because: "it calls runpy._run_code",
    code: "unsafe-pickle",
    message: /\brunpy\._run_code\b/,
  },
  {
    file: "mal_webbrowser_open_legacy.ckpt",
    because: "it calls webbrowser.open",
    code: "unsafe-pickle",
    message: /\bwebbrowser\.open\b/,
  },
  {
    file: "mal_torch_load_zip.ckpt",
    because: "it calls torch.load, which is not allowlisted",
    code: "unsafe-pickle",
    message: /\btorch\.load\b/,
  },
  {
    file: "mal_inst_opcode.pkl",
    because: "it uses INST on os.system",
    code: "unsafe-pickle",
    message: /INST of os\.system.*byte 28/,
  },
  {
    file: "mal_obj_opcode.pkl",
    because: "it names os.system for OBJ",
    code: "unsafe-pickle",
    message: /\bos\.system\b/,
  },
  {
    file: "mal_stack_global_runtime_names.pkl",
    because: "it computes a global name with _codecs.encode(rot13)",
    code: "unsafe-pickle",
    message: /_codecs\.encode with encoding "rot13"/,
  },
  {
    file: "mal_build_setstate_zip.ckpt",
    because: "its BUILD state names posix.system",
    code: "unsafe-pickle",
    message: /\bposix\.system\b/,
  },
  {
    file: "mal_build_dunder_allowed_globals_zip.ckpt",
    because: "its BUILD sets dunder attributes on an OrderedDict",
    code: "unsafe-pickle",
    message: /refusing BUILD that sets attribute "__class__"/,
  },
  {
    file: "mal_deep_nesting.pkl",
    because: "it nests MARKs 100000 deep",
    code: "limit",
    message: /MARKs nested deeper than 256/,
  },
  {
    file: "mal_binunicode_huge_length.pkl",
    because: "its BINUNICODE declares 4 GB with 16 bytes left",
    code: "format",
    message:
      /BINUNICODE.*4294967280 bytes but only 16 remain|4294967280 bytes but only 16 remain.*BINUNICODE/,
  },
  {
    file: "mal_zip_string_past_entry_end.ckpt",
    because: "its last string runs past the data.pkl entry",
    code: "format",
    message: /828 bytes but only 0 remain/,
  },
  {
    file: "mal_truncated_zip.ckpt",
    because: "it has no end-of-central-directory record",
    code: "format",
    message: /end-of-central-directory/,
  },
  {
    file: "mal_zip_missing_storage.ckpt",
    because: "storage 9 has no data/9 record",
    code: "format",
    message: /storage 9 .*no mal_zip_missing_storage\/data\/9/,
  },
  {
    file: "mal_zip_tensor_exceeds_storage.ckpt",
    because: "tensor big reaches past its 16-element storage",
    code: "format",
    message: /needs 4096 elements but storage 0 holds 16/,
    path: "state_dict.big",
  },
  {
    file: "mal_zip_storage_numel_mismatch.ckpt",
    because: "its persistent id declares 1048576 elements for a 64-byte record",
    code: "format",
    message: /1048576 elements .* holds 64 bytes/,
  },
  {
    file: "mal_legacy_storage_count_overflow.ckpt",
    because: "its first storage record claims 2**40 elements",
    code: "format",
    message: /claims 1099511627776 F32 elements .* only 28 bytes remain/,
  },
];

describe("hostile checkpoints", () => {
  it("covers every mal_* fixture", () => {
    const hostile = fixtureNames().filter((name) => fixtureExpectation(name).must_reject);
    expect(rejections.map((r) => r.file).sort()).toEqual(hostile);
  });

  it.each(rejections)("rejects $file because $because", async ({ file, code, message, path }) => {
    const pwnedBefore = existsSync(PWNED);
    const source = await FileByteSource.open(FIXTURE_DIR + file);
    const started = performance.now();
    try {
      const error = await parseTorchFile(source).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(GyozaError);
      expect((error as GyozaError).code).toBe(code);
      expect((error as GyozaError).message).toMatch(message);
      if (path) expect((error as GyozaError).path).toBe(path);
      await expect(openTorchCheckpoint(source, file)).rejects.toThrow(message);
    } finally {
      await source.close();
    }
    expect(performance.now() - started).toBeLessThan(FAST_MS);
    if (!pwnedBefore) expect(existsSync(PWNED)).toBe(false);
  });

  it.each(rejections.filter((r) => r.file.endsWith(".pkl")))(
    "refuses the bare pickle $file in the interpreter itself",
    async ({ file, code, message }) => {
      const source = await FileByteSource.open(FIXTURE_DIR + file);
      try {
        await expect(interpretPickle(source)).rejects.toSatisfy(
          (error: unknown) =>
            error instanceof GyozaError && error.code === code && message.test(error.message),
        );
      } finally {
        await source.close();
      }
    },
  );
});
