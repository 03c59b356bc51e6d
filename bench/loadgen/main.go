// loadgen: drives sightd's v1 streaming endpoint at a fixed concurrency and
// reports throughput and latency. It sends the same multipart body every time
// (built once) and reads each stream to its end, as a real client would.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

type result struct {
	latency   time.Duration
	decode    float64 // ms, the done line's timing_ms.decode
	inference float64 // ms, as the server measured its model run
	ok        bool
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/api/v1/inference/predict/stream", "endpoint")
	key := flag.String("key", "", "API key")
	file := flag.String("file", "", "image to send")
	conc := flag.Int("c", 1, "concurrent clients")
	n := flag.Int("n", 40, "requests in all (after warm-up)")
	warm := flag.Int("warmup", 4, "requests before measuring")
	// Load mode (make load): -duration > 0 keeps -c clients busy that long instead of sending -n requests.
	dur := flag.Duration("duration", 0, "load mode: run this long (e.g. 60s) and classify every request")
	pid := flag.Int("pid", 0, "load mode: the server's process id, for its RSS (VmRSS) and liveness")
	settle := flag.Duration("settle", 5*time.Second, "load mode: wait this long after the load before the after-RSS")
	backoff := flag.Duration("backoff", 100*time.Millisecond, "load mode: a client's pause after a 429")
	rssSlack := flag.Float64("rss-slack", 0.10, "load mode: fail when after-RSS > idle-RSS x (1 + this)")
	deepstack := flag.Bool("deepstack", false, "send DeepStack's form (image, api_key) and read its JSON answer")
	meta := flag.String("meta", `{"is_yolo": true, "is_llm": false}`, "the file's metadata (is_yolo false: decode only, a quick request)")
	flag.Parse()

	img, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctype, payload := formBody(*key, *file, img, *meta)
	if *deepstack {
		ctype, payload = deepstackBody(*key, *file, img)
	}
	if *dur > 0 {
		os.Exit(runLoad(loadConfig{url: *url, ctype: ctype, payload: payload, clients: *conc, duration: *dur,
			pid: *pid, settle: *settle, backoff: *backoff, rssSlack: *rssSlack}))
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc + 1}}
	one := func() result {
		t := time.Now()
		resp, err := client.Post(*url, ctype, bytes.NewReader(payload))
		if err != nil {
			return result{}
		}
		defer resp.Body.Close()
		r := result{ok: resp.StatusCode == 200}
		if *deepstack {
			var ans struct {
				Success     bool    `json:"success"`
				InferenceMs float64 `json:"inferenceMs"`
			}
			r.ok = r.ok && json.NewDecoder(resp.Body).Decode(&ans) == nil && ans.Success
			r.inference = ans.InferenceMs
			r.latency = time.Since(t)
			return r
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var line struct {
				Status string `json:"status"`
				Result struct {
					Yolo struct {
						Speed struct {
							Inference float64 `json:"inference"`
						} `json:"speed_ms"`
					} `json:"yolo"`
					Timing struct {
						Decode float64 `json:"decode"`
					} `json:"timing_ms"`
				} `json:"result"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				if line.Status == "done" {
					r.inference = line.Result.Yolo.Speed.Inference
					r.decode = line.Result.Timing.Decode
				} else if line.Status == "error" {
					r.ok = false
				}
			}
		}
		r.latency = time.Since(t)
		return r
	}

	for i := 0; i < *warm; i++ {
		one()
	}
	results := make([]result, 0, *n)
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *conc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= *n {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				r := one()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start).Seconds()

	var lat, inf, dec []float64
	failed := 0
	for _, r := range results {
		if !r.ok {
			failed++
			continue
		}
		lat = append(lat, float64(r.latency.Microseconds())/1000)
		inf = append(inf, r.inference)
		dec = append(dec, r.decode)
	}
	sort.Float64s(lat)
	sort.Float64s(inf)
	sort.Float64s(dec)
	pct := func(v []float64, p float64) float64 {
		if len(v) == 0 {
			return 0
		}
		i := int(p * float64(len(v)))
		if i >= len(v) {
			i = len(v) - 1
		}
		return v[i]
	}
	out := map[string]any{
		"concurrency": *conc, "requests": len(results), "failed": failed,
		"images_per_s": float64(len(lat)) / wall,
		"p50_ms":       pct(lat, 0.5), "p95_ms": pct(lat, 0.95),
		"inference_p50_ms": pct(inf, 0.5), "decode_p50_ms": pct(dec, 0.5),
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	if failed > 0 {
		os.Exit(1)
	}
}

// formBody is the v1 multipart body: the key, one file and its metadata.
func formBody(key, name string, img []byte, meta string) (string, []byte) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("api_key", key)
	_ = w.WriteField("metadata", meta)
	part, _ := w.CreateFormFile("files", filepath.Base(name))
	part.Write(img)
	w.Close()
	return w.FormDataContentType(), body.Bytes()
}

// deepstackBody is DeepStack's form: the key and the frame in "image".
func deepstackBody(key, name string, img []byte) (string, []byte) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("api_key", key)
	part, _ := w.CreateFormFile("image", filepath.Base(name))
	part.Write(img)
	w.Close()
	return w.FormDataContentType(), body.Bytes()
}
