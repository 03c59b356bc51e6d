// The few Node APIs predict.mts uses. Debian ships tsc but not @types/node,
// and installing that would need npm; these declarations keep the type check
// strict without it (fetch, FormData, File etc. come from lib.dom).
declare module "node:fs" {
  const fs: { readFileSync(path: string): Uint8Array };
  export default fs;
}
declare module "node:path" {
  const path: { basename(p: string): string };
  export default path;
}
declare const process: {
  argv: string[];
  exit(code: number): never;
  stdout: { write(s: string): boolean };
};
