// The spec's Java OkHttp example, wrapped in a method with the URL's origin,
// key, query, metadata and files from the command line; the builder calls are
// the spec's (api_key, query, every metadata, then the files). Compiled by the
// tests with javac against Debian's libokhttp-java (OkHttp 3.13, okio 1.x in
// /usr/share/java); Maven Central is not reachable here.
//
// usage: java Predict BASE_URL API_KEY QUERY META_JSON FILE...
// Prints each line of the stream as it arrives; on a non-OK response prints
// "ERROR <status> <message>" and exits 3.
import okhttp3.*;
import java.io.*;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Predict {
    static void predictStream(String baseUrl, String apiKey, String query,
                              List<String> metadata, List<File> files) throws IOException {
        OkHttpClient client = new OkHttpClient();

        // Each metadata entry is a JSON string
        MultipartBody.Builder builder = new MultipartBody.Builder()
            .setType(MultipartBody.FORM)
            .addFormDataPart("api_key", apiKey)
            .addFormDataPart("query", query);
        for (String m : metadata)
            builder.addFormDataPart("metadata", m);
        for (File f : files)
            // The spec writes RequestBody.create(file, mediaType), OkHttp 4's
            // Kotlin signature; OkHttp 3 (Debian's) has create(mediaType, file).
            // The spec labels every file image/jpeg (a PNG too); kept so.
            builder.addFormDataPart("files", f.getName(),
                RequestBody.create(MediaType.parse("image/jpeg"), f));
        RequestBody body = builder.build();

        Request request = new Request.Builder()
            .url(baseUrl + "/api/v1/inference/predict/stream")
            .post(body)
            .build();

        try (Response response = client.newCall(request).execute()) {
            if (!response.isSuccessful()) throw new IOException("Unexpected code: " + response);

            BufferedReader reader = new BufferedReader(
                new InputStreamReader(response.body().byteStream()));
            String line;
            while ((line = reader.readLine()) != null) {
                if (!line.isBlank()) {
                    // The spec prints "Received: " + line; the tests want the bare JSON line.
                    System.out.println(line);
                    System.out.flush();
                }
            }
        }
    }

    // META_JSON is a JSON array of flat objects; split it into one JSON string per
    // entry without a JSON library (Debian's OkHttp brings none).
    static List<String> splitArray(String json) {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("\\{[^{}]*\\}").matcher(json);
        while (m.find()) out.add(m.group());
        return out;
    }

    public static void main(String[] args) {
        if (args.length < 4) {
            System.err.println("usage: java Predict BASE_URL API_KEY QUERY META_JSON FILE...");
            System.exit(2);
        }
        List<File> files = new ArrayList<>();
        for (int i = 4; i < args.length; i++) files.add(new File(args[i]));
        try {
            predictStream(args[0], args[1], args[2], splitArray(args[3]), files);
        } catch (IOException e) {
            // The spec's error carries the status only inside Response.toString().
            Matcher m = Pattern.compile("code=(\\d+)").matcher(String.valueOf(e.getMessage()));
            if (m.find()) {
                System.out.println("ERROR " + m.group(1) + " " + e.getMessage());
                System.exit(3);
            }
            e.printStackTrace();
            System.exit(1);
        }
    }
}
