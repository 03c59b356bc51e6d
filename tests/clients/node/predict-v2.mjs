// The spec's JavaScript predictStreamV2 (POST .../predict/stream/v2, a JSON
// body of image URLs), copied as-is except that the URL's origin comes from
// the command line, driven by the same kind of CLI as predict.mjs (Node 20
// globals only).
//
// usage: node predict-v2.mjs BASE_URL API_KEY QUERY DATA_JSON
// DATA_JSON is the "data" array: [{"image_url":..,"filename":..,"is_yolo":..,"is_llm":..}].
// Prints each chunk as one JSON line; on a non-OK response prints
// "ERROR <status> <detail.message>" and exits 3.
const [BASE_URL, apiKey, query, dataJson] = process.argv.slice(2);
if (!BASE_URL || apiKey === undefined || query === undefined || !dataJson) {
  console.error("usage: node predict-v2.mjs BASE_URL API_KEY QUERY DATA_JSON");
  process.exit(2);
}

// ---- spec code, unchanged but for the URL ----
async function predictStreamV2(apiKey, query, data, onChunk) {
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
    throw new Error(error.detail?.message ?? "Request failed");
  }

  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";

  while (true) {
    const { done, value } = await reader.read();
    if (done) break;

    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop();

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
globalThis.fetch = async (...args) => {
  const r = await realFetch(...args);
  lastStatus = r.status;
  return r;
};

try {
  await predictStreamV2(apiKey, query, JSON.parse(dataJson),
    (chunk) => process.stdout.write(JSON.stringify(chunk) + "\n"));
} catch (e) {
  if (lastStatus && (lastStatus < 200 || lastStatus > 299)) {
    process.stdout.write(`ERROR ${lastStatus} ${e.message}\n`);
    process.exit(3);
  }
  console.error(e);
  process.exit(1);
}
