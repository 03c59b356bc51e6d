// CLI around the spec's Java v2 client (RakuSightClient.java).
//
// usage: java PredictV2 BASE_URL API_KEY QUERY DATA_JSON
// DATA_JSON is the "data" array: [{"image_url":..,"filename":..,"is_yolo":..,"is_llm":..}],
// read with Jackson into a List of Maps and handed to predictStreamV2 as its List<?> data.
// Prints each line of the stream as it arrives; on a non-OK response prints
// "ERROR <status> <message>" and exits 3.
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class PredictV2 {
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: java PredictV2 BASE_URL API_KEY QUERY DATA_JSON");
            System.exit(2);
        }
        RakuSightClient.BASE_URL = args[0];
        try {
            List<?> data = new ObjectMapper().readValue(args[3], List.class);
            RakuSightClient.predictStreamV2(args[1], args[2], data);
        } catch (Exception e) {
            // The spec's error carries the status only inside Response.toString().
            Matcher m = Pattern.compile("code=(\\d+)").matcher(String.valueOf(e.getMessage()));
            if (e instanceof java.io.IOException && m.find()) {
                System.out.println("ERROR " + m.group(1) + " " + e.getMessage());
                System.exit(3);
            }
            e.printStackTrace();
            System.exit(1);
        }
    }
}
