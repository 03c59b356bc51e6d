// The spec's Go predictStream, copied as-is except that the URL's origin
// comes from the command line (metadata is written before the files, as in
// the spec), driven by a small CLI so the integration tests can run it
// against a real sightd. Standard library only.
//
// usage: predict BASE_URL API_KEY QUERY META_JSON FILE...
// (and "predict v2 BASE_URL API_KEY QUERY DATA_JSON": the v2 client, in v2.go)
// Prints each chunk as one JSON line; on a non-OK response prints
// "ERROR <status> <detail.message>" and exits 3.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
)

var baseURL string

// ---- spec code, unchanged but for the URL ----
type FileMetadata struct {
	IsYolo bool `json:"is_yolo"`
	IsLlm  bool `json:"is_llm"`
}

func predictStream(
	apiKey, query string,
	filePaths []string,
	metadata []FileMetadata,
	onChunk func(map[string]any),
) error {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)

	_ = w.WriteField("api_key", apiKey)
	if query != "" {
		_ = w.WriteField("query", query)
	}

	// Each metadata entry must be a JSON string
	for _, m := range metadata {
		b, _ := json.Marshal(m)
		_ = w.WriteField("metadata", string(b))
	}

	for _, path := range filePaths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		part, _ := w.CreateFormFile("files", filepath.Base(path))
		io.Copy(part, f)
	}
	w.Close()

	resp, err := http.Post(
		baseURL+"/api/v1/inference/predict/stream",
		w.FormDataContentType(),
		&buf,
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

// statusError is a refusal seen by statusCheck.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d %s", e.status, e.message) }

// statusCheck turns a non-2xx answer into an error. The spec's predictStream
// never looks at resp.StatusCode (it would hand the {"detail":...} body to
// onChunk as if it were a chunk), so the check lives in the transport,
// leaving the spec's function untouched.
type statusCheck struct{ next http.RoundTripper }

func (t statusCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || (resp.StatusCode >= 200 && resp.StatusCode <= 299) {
		return resp, err
	}
	defer resp.Body.Close()
	var body struct {
		Detail struct {
			Message string `json:"message"`
		} `json:"detail"`
	}
	raw, _ := io.ReadAll(resp.Body)
	msg := "Request failed"
	if json.Unmarshal(raw, &body) == nil && body.Detail.Message != "" {
		msg = body.Detail.Message
	}
	return nil, &statusError{resp.StatusCode, msg}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "v2" {
		runV2(os.Args[2:]) // v2.go: the spec's v2 client
	}
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: predict BASE_URL API_KEY QUERY META_JSON FILE...")
		os.Exit(2)
	}
	baseURL = os.Args[1]
	var metadata []FileMetadata
	if err := json.Unmarshal([]byte(os.Args[4]), &metadata); err != nil {
		fmt.Fprintln(os.Stderr, "bad META_JSON:", err)
		os.Exit(2)
	}
	http.DefaultClient.Transport = statusCheck{http.DefaultTransport}

	out := bufio.NewWriter(os.Stdout)
	err := predictStream(os.Args[2], os.Args[3], os.Args[5:], metadata,
		func(chunk map[string]any) {
			b, _ := json.Marshal(chunk)
			out.Write(append(b, '\n'))
			out.Flush() // one line as soon as it arrives
		})
	if err != nil {
		// http.Post wraps the transport's error in a *url.Error.
		var se *statusError
		if errors.As(err, &se) {
			fmt.Printf("ERROR %d %s\n", se.status, se.message)
			os.Exit(3)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
