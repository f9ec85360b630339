// Types of read-file.mjs (plain JavaScript, so the floor child runs it without a loader).
export declare const READ_CHUNK_BYTES: number;
export declare function readWholeFile(path: string): Promise<void>;
