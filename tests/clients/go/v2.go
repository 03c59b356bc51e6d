// The spec's Go predictStreamV2 (POST .../predict/stream/v2, a JSON body of
// image URLs), copied as-is except that the URL's origin comes from the
// command line. main.go hands "predict v2 ..." to runV2.
//
// usage: predict v2 BASE_URL API_KEY QUERY DATA_JSON
// DATA_JSON is the "data" array: [{"image_url":..,"filename":..,"is_yolo":..,"is_llm":..}].
// Output as for v1: each chunk as one JSON line; on a non-OK response
// "ERROR <status> <detail.message>" and exit 3. Like the spec's v1 function,
// predictStreamV2 never looks at resp.StatusCode (it always sends "query",
// too, "" when empty): the statusCheck transport of main.go reports refusals.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// ---- spec code, unchanged but for the URL ----
type DataItem struct {
	ImageURL string `json:"image_url"`
	Filename string `json:"filename"`
	IsYolo   bool   `json:"is_yolo"`
	IsLlm    bool   `json:"is_llm"`
}

type PredictRequest struct {
	APIKey string     `json:"api_key"`
	Query  string     `json:"query"`
	Data   []DataItem `json:"data"`
}

func predictStreamV2(
	apiKey, query string,
	data []DataItem,
	onChunk func(map[string]any),
) error {
	payload, _ := json.Marshal(PredictRequest{APIKey: apiKey, Query: query, Data: data})

	resp, err := http.Post(
		baseURL+"/api/v1/inference/predict/stream/v2",
		"application/json",
		bytes.NewReader(payload),
	)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			continue
		}
		var chunk map[string]any
		json.Unmarshal([]byte(line), &chunk)
		onChunk(chunk)
	}
	return scanner.Err()
}

// ---- end of spec code ----

func runV2(args []string) {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: predict v2 BASE_URL API_KEY QUERY DATA_JSON")
		os.Exit(2)
	}
	baseURL = args[0]
	var data []DataItem
	if err := json.Unmarshal([]byte(args[3]), &data); err != nil {
		fmt.Fprintln(os.Stderr, "bad DATA_JSON:", err)
		os.Exit(2)
	}
	http.DefaultClient.Transport = statusCheck{http.DefaultTransport}

	out := bufio.NewWriter(os.Stdout)
	err := predictStreamV2(args[1], args[2], data,
		func(chunk map[string]any) {
			b, _ := json.Marshal(chunk)
			out.Write(append(b, '\n'))
			out.Flush() // one line as soon as it arrives
		})
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			fmt.Printf("ERROR %d %s\n", se.status, se.message)
			os.Exit(3)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
