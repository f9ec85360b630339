/**
 * gyoza's one entry to zod: the tree-shakable `zod/mini` build with English messages. The classic
 * `zod` build bundles every locale and method chain and adds ~55 ms to every CLI start (measured on
 * the bundled CLI); the schemas here are small enough that the functional form costs nothing.
 */
import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

// zod/mini ships without messages ("Invalid input"); classic registers English on first use.
config(en());

// Re-exported name by name, so `import * as z from "../zod.js"` still lets the bundler drop what
// gyoza does not use.
export * from "zod/mini";
