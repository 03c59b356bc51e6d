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
using System.Net;
using System.Net.Http;
using System.Text.Json;
using System.Runtime.CompilerServices;

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
