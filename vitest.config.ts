import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts", "web/src/**/*.test.ts"],
    // The checks against the full fixture corpus beside the repository: `npm run test:corpus`.
    exclude: [...configDefaults.exclude, "**/*.corpus.test.ts"],
    testTimeout: 60_000,
    pool: "forks",
  },
});
