/** JSON bodies: 1 MiB. */
export const JSON_BODY_LIMIT = 1024 * 1024;
/** Image bodies (`POST /api/images/inspect`): 32 MiB. */
export const IMAGE_BODY_LIMIT = 32 * 1024 * 1024;
