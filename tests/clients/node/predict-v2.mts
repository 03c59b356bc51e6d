// The spec's TypeScript predictStreamV2, copied as-is except that the URL's
// origin comes from the command line; same CLI and output as predict-v2.mjs.
// The tests compile it with Debian's tsc (tsconfig.v2.json) into a temporary
// folder, where it becomes predict-v2.mjs.
//
// usage: node predict-v2.mjs BASE_URL API_KEY QUERY DATA_JSON
const [BASE_URL, apiKey, query, dataJson] = process.argv.slice(2);
if (!BASE_URL || apiKey === undefined || query === undefined || !dataJson) {
  console.error("usage: node predict-v2.mjs BASE_URL API_KEY QUERY DATA_JSON");
  process.exit(2);
}

// ---- spec code, unchanged but for the URL ----
interface DataItem {
  image_url: string;
  filename: string;
  is_yolo: boolean;
  is_llm: boolean;
}

async function predictStreamV2(
  apiKey: string,
  query: string,
  data: DataItem[],
  onChunk: (chunk: unknown) => void
): Promise<void> {
  const response = await fetch(
    `${BASE_URL}/api/v1/inference/predict/stream/v2`,
    {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ api_key: apiKey, query, data }),
    }
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

try {
  await predictStreamV2(apiKey, query, JSON.parse(dataJson) as DataItem[],
    (chunk) => process.stdout.write(JSON.stringify(chunk) + "\n"));
} catch (e) {
  if (lastStatus && (lastStatus < 200 || lastStatus > 299)) {
    process.stdout.write(`ERROR ${lastStatus} ${(e as Error).message}\n`);
    process.exit(3);
  }
  console.error(e);
  process.exit(1);
}
