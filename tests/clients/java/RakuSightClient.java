// The spec's Java OkHttp v2 example (POST .../predict/stream/v2, a JSON body
// of image URLs, serialised with Jackson's ObjectMapper), copied as-is except:
//  - the URL's origin is the static BASE_URL, set by PredictV2 from the command line;
//  - RequestBody.create(bodyJson, mediaType) is OkHttp 4's Kotlin signature;
//    Debian's OkHttp 3.13 has create(mediaType, String). Like OkHttp 4 it
//    appends "; charset=utf-8" to a media type without one, so the request
//    says "Content-Type: application/json; charset=utf-8";
//  - each line is printed bare, not as "Received: " + line (the tests read JSON lines).
// Jackson is Debian's libjackson2-databind-java (jackson-databind, -core,
// -annotations 2.14 in /usr/share/java); no hand-built JSON is needed.
// Compiled by tests/integration/test_clients_v2.py together with PredictV2.java.
import okhttp3.*;
import java.io.*;
import java.util.List;
import com.fasterxml.jackson.databind.ObjectMapper;

public class RakuSightClient {
    static String BASE_URL = "";

    private static final OkHttpClient CLIENT = new OkHttpClient();
    private static final ObjectMapper MAPPER = new ObjectMapper();

    public static void predictStreamV2(
            String apiKey, String query, List<?> data) throws Exception {

        String bodyJson = MAPPER.writeValueAsString(
            new java.util.HashMap<String, Object>() {{
                put("api_key", apiKey);
                put("query", query);
                put("data", data);
            }}
        );

        RequestBody body = RequestBody.create(
            MediaType.parse("application/json"), bodyJson);

        Request request = new Request.Builder()
            .url(BASE_URL + "/api/v1/inference/predict/stream/v2")
            .post(body)
            .build();

        try (Response response = CLIENT.newCall(request).execute()) {
            if (!response.isSuccessful()) throw new IOException("Failed: " + response);

            BufferedReader reader = new BufferedReader(
                new InputStreamReader(response.body().byteStream()));
            String line;
            while ((line = reader.readLine()) != null) {
                if (!line.isBlank()) {
                    System.out.println(line);
                    System.out.flush();
                }
            }
        }
    }
}
