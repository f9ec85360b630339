import { extname } from "node:path";
import { GyozaError } from "../errors.js";
import type { ImageContainer } from "./metadata-types.js";

/**
 * The file-name extensions each container goes by, first one preferred. Viewers, browsers and upload
 * forms pick a decoder by extension, so a PNG named `.jpg` shows as broken in some of them and is
 * rejected by others.
 */
export const CONTAINER_EXTENSIONS: Readonly<Record<ImageContainer, readonly string[]>> = {
  png: [".png"],
  jpeg: [".jpg", ".jpeg", ".jpe", ".jfif"],
  webp: [".webp"],
  avif: [".avif", ".heic", ".heif"],
};

/** The container a file name claims by its extension (case-insensitive), if it is an image extension. */
export function containerOfName(name: string): ImageContainer | undefined {
  const extension = extname(name).toLowerCase();
  const entries = Object.entries(CONTAINER_EXTENSIONS) as [ImageContainer, readonly string[]][];
  return entries.find(([, extensions]) => extensions.includes(extension))?.[0];
}

/**
 * Refuses to write `container` bytes under a name whose extension says otherwise (or no image
 * extension at all): metadata tools keep the target's bytes, so they cannot change its container.
 */
export function checkNameFitsContainer(name: string, container: ImageContainer, bytesFrom: string): void {
  const claimed = containerOfName(name);
  if (claimed === container) return;
  const what = container.toUpperCase();
  const extension = extname(name);
  const says = claimed
    ? `its name ends in ${extension} (a ${claimed.toUpperCase()} name)`
    : extension
      ? `its name ends in ${extension}, which is not a ${what} extension`
      : "its name has no extension";
  const preferred = CONTAINER_EXTENSIONS[container][0]!;
  const renamed = `${extension ? name.slice(0, -extension.length) : name}${preferred}`;
  throw new GyozaError(
    "usage",
    `the output would be a ${what} image (the container of ${bytesFrom}, whose pixels are kept as they are) but ${says}`,
    {
      file: name,
      fix: `name the output ${renamed} (${CONTAINER_EXTENSIONS[container].join(", ")}), or give a ${claimed ? claimed.toUpperCase() : "matching"} image as the target`,
    },
  );
}
