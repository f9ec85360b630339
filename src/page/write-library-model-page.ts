import { type LibraryStore, modelPage } from "../library/index.js";
import { pageDataFromView } from "./page-data-from-view.js";
import { type WriteModelPageOptions, type WrittenModelPage, writeModelPage } from "./write-model-page.js";

export interface LibraryModelPage extends WrittenModelPage {
  model: string;
  versions: { name: string; files: number; images: number }[];
}

/**
 * `gyoza page MODEL -o DIR`: the library's model (`MODEL`, `MODEL@VERSION`, a Civitai model id, a
 * file path or hash prefix of one of its files) written as a model page folder.
 */
export async function writeLibraryModelPage(
  store: LibraryStore,
  modelRef: string,
  folder: string,
  options: WriteModelPageOptions = {},
): Promise<LibraryModelPage> {
  const data = pageDataFromView(modelPage(store, modelRef));
  const written = await writeModelPage(data, folder, options);
  return {
    model: data.model.name,
    versions: data.versions.map((version) => ({
      name: version.name,
      files: version.files.length,
      images: version.images.length,
    })),
    ...written,
  };
}
