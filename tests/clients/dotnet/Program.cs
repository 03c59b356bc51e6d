// The spec's C# PredictStreamAsync, copied as-is except that the URL's origin
// comes from the command line (StreamContent with a filename for the files,
// StringContent for the fields), driven by a small CLI so the integration
// tests can run it against a real sightd.
//
// usage: predict BASE_URL API_KEY QUERY META_JSON FILE...
// Prints each chunk as one JSON line; on a non-OK response prints
// "ERROR <status> <message>" and exits 3. The spec's client calls
// EnsureSuccessStatusCode without reading the body, so the message is
// HttpRequestException's, not the server's detail.message.
//
// "predict v2 BASE_URL API_KEY QUERY DATA_JSON" runs the spec's v2 client
// (PredictStreamV2Async, JSON body sent with JsonContent.Create) instead, with
// the same output; DATA_JSON is the "data" array of image_url items. The
// spec names its v2 class RakuSightClient too, so it lives in namespace SpecV2.
using System.Net;
using System.Net.Http;
using System.Net.Http.Json;
using System.Text.Json;
using System.Runtime.CompilerServices;

if (args.Length > 0 && args[0] == "v2")
    return await SpecV2.Cli.RunAsync(args[1..]);
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: predict BASE_URL API_KEY QUERY META_JSON FILE...");
    return 2;
}
RakuSightClient.BaseUrl = args[0];
var metadata = new List<FileMetadata>();
foreach (var m in JsonDocument.Parse(args[3]).RootElement.EnumerateArray())
{
    bool Flag(string k) => m.TryGetProperty(k, out var v) && v.GetBoolean();
    metadata.Add(new FileMetadata(IsYolo: Flag("is_yolo"), IsLlm: Flag("is_llm")));
}
var streams = args.Skip(4).Select(p => (Path.GetFileName(p), (Stream)File.OpenRead(p))).ToList();
var stdout = Console.Out;
try
{
    await foreach (var chunk in RakuSightClient.PredictStreamAsync(
        args[1], args[2], streams, metadata))
    {
        using (chunk)
        {
            // Compact, one line per chunk (JsonElement.ToString would keep the
            // server's text, which is already one line, but be explicit).
            stdout.WriteLine(JsonSerializer.Serialize(chunk.RootElement));
            stdout.Flush();
        }
    }
}
catch (HttpRequestException e) when (e.StatusCode is HttpStatusCode status)
{
    stdout.WriteLine($"ERROR {(int)status} {e.Message}");
    return 3;
}
finally
{
    foreach (var (_, s) in streams) s.Dispose();
}
return 0;

// ---- spec code, unchanged but for the URL ----
public record FileMetadata(bool IsYolo, bool IsLlm);

public class RakuSightClient
{
    public static string BaseUrl = "";

    private static readonly HttpClient Http = new();

    public static async IAsyncEnumerable<JsonDocument> PredictStreamAsync(
        string apiKey,
        string? query,
        IEnumerable<(string FileName, Stream Content)> files,
        IEnumerable<FileMetadata> metadata,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent(apiKey), "api_key");
        if (query is not null)
            form.Add(new StringContent(query), "query");

        foreach (var (fileName, content) in files)
            form.Add(new StreamContent(content), "files", fileName);

        // Each metadata entry must be a JSON string
        foreach (var m in metadata)
        {
            var json = JsonSerializer.Serialize(new { is_yolo = m.IsYolo, is_llm = m.IsLlm });
            form.Add(new StringContent(json), "metadata");
        }

        using var request = new HttpRequestMessage(HttpMethod.Post,
            BaseUrl + "/api/v1/inference/predict/stream")
        {
            Content = form,
        };

        using var response = await Http.SendAsync(
            request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();

        using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new System.IO.StreamReader(stream);

        while (!reader.EndOfStream)
        {
            var line = await reader.ReadLineAsync(ct);
            if (!string.IsNullOrWhiteSpace(line))
                yield return JsonDocument.Parse(line);
        }
    }
}
// ---- end of spec code ----

namespace SpecV2
{
    public static class Cli
    {
        public static async Task<int> RunAsync(string[] args)
        {
            if (args.Length != 4)
            {
                Console.Error.WriteLine("usage: predict v2 BASE_URL API_KEY QUERY DATA_JSON");
                return 2;
            }
            RakuSightClient.BaseUrl = args[0];
            // Each item as an anonymous object, as the spec's callers would build it.
            var data = new List<object>();
            foreach (var d in JsonDocument.Parse(args[3]).RootElement.EnumerateArray())
            {
                bool Flag(string k) => d.TryGetProperty(k, out var v) && v.GetBoolean();
                data.Add(new
                {
                    image_url = d.GetProperty("image_url").GetString(),
                    filename = d.TryGetProperty("filename", out var f) ? f.GetString() : null,
                    is_yolo = Flag("is_yolo"),
                    is_llm = Flag("is_llm"),
                });
            }
            var stdout = Console.Out;
            try
            {
                await foreach (var chunk in RakuSightClient.PredictStreamV2Async(args[1], args[2], data))
                {
                    using (chunk)
                    {
                        stdout.WriteLine(JsonSerializer.Serialize(chunk.RootElement));
                        stdout.Flush();
                    }
                }
            }
            catch (HttpRequestException e) when (e.StatusCode is HttpStatusCode status)
            {
                stdout.WriteLine($"ERROR {(int)status} {e.Message}");
                return 3;
            }
            return 0;
        }
    }

    // ---- spec code (v2), unchanged but for the URL ----
    public class RakuSightClient
    {
        public static string BaseUrl = "";

        private static readonly HttpClient Http = new();

        public static async IAsyncEnumerable<JsonDocument> PredictStreamV2Async(
            string apiKey, string query, IEnumerable<object> data,
            [EnumeratorCancellation] CancellationToken ct = default)
        {
            var payload = new { api_key = apiKey, query, data };

            using var request = new HttpRequestMessage(HttpMethod.Post,
                BaseUrl + "/api/v1/inference/predict/stream/v2")
            {
                Content = JsonContent.Create(payload),
            };

            using var response = await Http.SendAsync(
                request, HttpCompletionOption.ResponseHeadersRead, ct);
            response.EnsureSuccessStatusCode();

            using var stream = await response.Content.ReadAsStreamAsync(ct);
            using var reader = new System.IO.StreamReader(stream);

            while (!reader.EndOfStream)
            {
                var line = await reader.ReadLineAsync(ct);
                if (!string.IsNullOrWhiteSpace(line))
                    yield return JsonDocument.Parse(line);
            }
        }
    }
    // ---- end of spec code ----
}
