import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { it } from "vitest";

/**
 * What the gyoza serve browser tests share: Debian's chromium driven through playwright-core (which
 * never downloads a browser), the client built with vite, and a page that records every problem
 * (page errors, console errors, refused requests, requests to another origin) for the test to
 * expect empty. Without chromium the suites are skipped, unless GYOZA_REQUIRE_CHROMIUM=1 (CI) makes
 * that a failure.
 */
export const CHROMIUM =
  process.env.GYOZA_CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
export const CHROMIUM_MISSING = CHROMIUM === undefined || !existsSync(CHROMIUM);
export const CHROMIUM_SKIP_REASON =
  "no chromium at /usr/bin/chromium (apt-get install chromium, or set GYOZA_CHROMIUM)";
/** Where screenshots go: $GYOZA_SCREENSHOT_DIR, default a gyoza-serve-screens folder in the OS temp dir. */
export const SCREENSHOT_DIR = process.env.GYOZA_SCREENSHOT_DIR ?? join(tmpdir(), "gyoza-serve-screens");

/** In a test file: fails (instead of skipping) when chromium is missing and GYOZA_REQUIRE_CHROMIUM=1. */
export function requireChromiumWhenAsked(): void {
  if (CHROMIUM_MISSING && process.env.GYOZA_REQUIRE_CHROMIUM === "1") {
    it("finds chromium (GYOZA_REQUIRE_CHROMIUM=1)", () => {
      throw new Error(`GYOZA_REQUIRE_CHROMIUM=1 but ${CHROMIUM_SKIP_REASON}`);
    });
  }
}

/** Builds the web client (web/vite.config.ts) into `outDir`. */
export async function buildWebClient(outDir: string): Promise<void> {
  const { build } = await import("vite");
  await build({
    configFile: resolve("web/vite.config.ts"),
    logLevel: "error",
    build: { outDir, emptyOutDir: true },
  });
}

export interface AppPage {
  browser: Browser;
  page: Page;
  /** Page errors, console errors, HTTP ≥ 400 answers (but the expected ones) and requests to other origins. */
  problems: string[];
}

/** Launches chromium, opens `url` (the server's start URL with its token) and records problems. */
export async function openAppPage(
  url: string,
  options: { permissions?: string[]; expectedRefusal?: (path: string) => boolean } = {},
): Promise<AppPage> {
  const problems: string[] = [];
  const browser = await chromium.launch({ executablePath: CHROMIUM! });
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  if (options.permissions) await context.grantPermissions(options.permissions);
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // a refused request is logged as "Failed to load resource"; those are checked by URL below
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
      problems.push(`console: ${message.text()}`);
  });
  page.on("response", (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() >= 400 && !options.expectedRefusal?.(path))
      problems.push(`HTTP ${response.status()} for ${path}`);
  });
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== new URL(url).origin && !request.url().startsWith("blob:"))
      problems.push(`request to another origin: ${request.url()}`);
  });
  await page.goto(url);
  return { browser, page, problems };
}
