/** JSON bodies: 1 MiB. */
export const JSON_BODY_LIMIT = 1024 * 1024;
/** Image bodies (`POST /api/images/inspect`): 32 MiB. */
export const IMAGE_BODY_LIMIT = 32 * 1024 * 1024;
/**
 * `POST /api/images/copy-metadata` (JSON carrying two images as base64): two images at the image
 * limit, base64 (4/3), and room for the rest of the body.
 */
export const COPY_METADATA_BODY_LIMIT = 2 * Math.ceil(IMAGE_BODY_LIMIT / 3) * 4 + 64 * 1024;
