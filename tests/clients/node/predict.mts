// The spec's TypeScript predictStream, copied as-is except that the URL's
// origin comes from the command line; same CLI and output as predict.mjs.
// Node 20 cannot run TypeScript, so the tests compile this with Debian's tsc
// (package node-typescript, no npm) into a temporary folder: predict.mts
// becomes predict.mjs, an ES module Node runs directly.
//
// usage: node predict.mjs BASE_URL API_KEY QUERY META_JSON FILE...
import fs from "node:fs";
import path from "node:path";

const [BASE_URL, apiKey, query, metaJson, ...paths] = process.argv.slice(2);
if (!BASE_URL || apiKey === undefined || query === undefined || !metaJson) {
  console.error("usage: node predict.mjs BASE_URL API_KEY QUERY META_JSON FILE...");
  process.exit(2);
}

// ---- spec code, unchanged but for the URL ----
interface FileMetadata {
  is_yolo: boolean;
  is_llm: boolean;
}

type ChunkHandler = (chunk: unknown) => void;

async function predictStream(
  apiKey: string,
  query: string | null,
  files: File[],
  metadata: FileMetadata[],
  onChunk: ChunkHandler
): Promise<void> {
  const form = new FormData();
  form.append("api_key", apiKey);
  if (query) form.append("query", query);

  for (const file of files) {
    form.append("files", file);
  }

  // Each metadata entry must be a JSON string
  for (const m of metadata) {
    form.append("metadata", JSON.stringify(m));
  }

  const response = await fetch(
    `${BASE_URL}/api/v1/inference/predict/stream`,
    { method: "POST", body: form }
  );

  if (!response.ok) {
    const error = await response.json();
    throw new Error((error.detail as { message: string })?.message ?? "Request failed");
  }

  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";

  while (true) {
    const { done, value } = await reader.read();
    if (done) break;

    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";

    for (const line of lines) {
      if (line.trim()) onChunk(JSON.parse(line));
    }
  }
}
// ---- end of spec code ----

// The spec's function throws only the message; remember the status of the
// response it saw so the CLI can report it without changing that function.
let lastStatus = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
  const r = await realFetch(input, init);
  lastStatus = r.status;
  return r;
};

// Node 20's global File stands in for the browser's <input type=file> files.
const files = paths.map((p) => new File([fs.readFileSync(p)], path.basename(p)));

try {
  await predictStream(apiKey, query, files, JSON.parse(metaJson) as FileMetadata[],
    (chunk) => process.stdout.write(JSON.stringify(chunk) + "\n"));
} catch (e) {
  if (lastStatus && (lastStatus < 200 || lastStatus > 299)) {
    process.stdout.write(`ERROR ${lastStatus} ${(e as Error).message}\n`);
    process.exit(3);
  }
  console.error(e);
  process.exit(1);
}
