/**
 * The model page (issue #21): one static, self-contained HTML page per library model, with its
 * versions, files and hashes, sample images (thumbnails made with sharp, originals copied with their
 * metadata), recipe tree and block-weight charts.
 */
export { blockWeightChart, type StepCurve, stepCurves, weightSpecText } from "./block-weight-chart.js";
export { generationFields, infotextOf } from "./generation-text.js";
export { escapeHtml, formatSize } from "./html-text.js";
export type {
  ModelPageData,
  PageFile,
  PageImage,
  PageModel,
  PageParent,
  PageRecipe,
  PageUsage,
  PageVersion,
} from "./model-page-data.js";
export { pageDataFromView } from "./page-data-from-view.js";
export { renderRecipe } from "./recipe-tree.js";
export { type PageImageFiles, renderModelPage } from "./render-model-page.js";
export { MAX_INPUT_PIXELS, makeThumbnail, THUMBNAIL_SIZE_PX, type ThumbnailResult } from "./thumbnails.js";
export { type LibraryModelPage, writeLibraryModelPage } from "./write-library-model-page.js";
export {
  type WriteModelPageOptions,
  type WrittenImage,
  type WrittenModelPage,
  writeModelPage,
} from "./write-model-page.js";
