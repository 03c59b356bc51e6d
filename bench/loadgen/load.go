package main

// Load mode (make load): keeps a fixed number of clients busy for a fixed
// time against the v1 stream and classifies every request, while watching the
// server's resident memory. The run fails on any request that is neither a
// complete stream nor a 429 with Retry-After, on a server that dies, and on
// RSS that does not come back near its idle level after the load.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type loadConfig struct {
	url, ctype      string
	payload         []byte
	clients         int
	duration        time.Duration
	pid             int
	settle, backoff time.Duration
	rssSlack        float64
}

type outcome struct {
	class   string // "complete", "429", or "other"
	why     string // for "other": what went wrong
	latency time.Duration
}

// rssKB reads VmRSS from /proc/PID/status; -1 when the process is gone.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return -1
}

func alive(pid int) bool {
	if pid <= 0 {
		return true
	}
	// A zombie (exited, not yet reaped by the script) still has /proc/PID: look at its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && syscall.Kill(pid, 0) == nil
}

// request sends one stream request and reads it to its end.
func request(client *http.Client, cfg *loadConfig) outcome {
	t := time.Now()
	resp, err := client.Post(cfg.url, cfg.ctype, bytes.NewReader(cfg.payload))
	if err != nil {
		return outcome{class: "other", why: "transport: " + err.Error()}
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case 200:
	case 429:
		io.Copy(io.Discard, resp.Body)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if _, err := strconv.Atoi(ra); err == nil {
				return outcome{class: "429"}
			}
		}
		return outcome{class: "other", why: "429 without a usable Retry-After"}
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return outcome{class: "other", why: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var last struct {
		Status    string `json:"status"`
		Failed    int    `json:"failed"`
		Succeeded int    `json:"succeeded"`
		Error     struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	lines, fileErr := 0, ""
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		lines++
		last.Status, last.Error.Code = "", ""
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			return outcome{class: "other", why: "a line that is not JSON: " + err.Error()}
		}
		if last.Status == "error" {
			fileErr = last.Error.Code
		}
	}
	if err := sc.Err(); err != nil {
		return outcome{class: "other", why: fmt.Sprintf("stream cut after %d lines: %v", lines, err)}
	}
	if last.Status != "complete" {
		return outcome{class: "other", why: fmt.Sprintf("stream ended after %d lines without complete", lines)}
	}
	// The file itself must be done too: an error line under load is a fault.
	if last.Failed != 0 || last.Succeeded != 1 {
		return outcome{class: "other", why: "complete, but the file failed: " + fileErr}
	}
	return outcome{class: "complete", latency: time.Since(t)}
}

func runLoad(cfg loadConfig) int {
	// Every request opens its own connection (the server closes each one):
	// keep-alive would not be used anyway, and this is what the server sees
	// from many independent clients.
	client := &http.Client{Timeout: 120 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}

	// Idle: after start-up, warm-up and one request, once the server is quiet.
	if o := request(client, &cfg); o.class != "complete" {
		fmt.Fprintf(os.Stderr, "load: the first request failed: %s %s\n", o.class, o.why)
		return 1
	}
	time.Sleep(2 * time.Second)
	idle := rssKB(cfg.pid)

	var peak int64 = idle
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	var peakMu sync.Mutex
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				if v := rssKB(cfg.pid); v > 0 {
					peakMu.Lock()
					if v > peak {
						peak = v
					}
					peakMu.Unlock()
				}
			}
		}
	}()

	var mu sync.Mutex
	var outs []outcome
	start := time.Now()
	end := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for c := 0; c < cfg.clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				o := request(client, &cfg)
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
				if o.class == "429" {
					// Not the whole Retry-After: the point is to keep the pressure on.
					time.Sleep(cfg.backoff)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	close(stopSampling)
	sampler.Wait()
	time.Sleep(cfg.settle)
	after := rssKB(cfg.pid)
	up := alive(cfg.pid)
	if up {
		if r, err := client.Get(strings.Replace(cfg.url, "/api/v1/inference/predict/stream", "/healthz", 1)); err != nil {
			up = false
		} else {
			r.Body.Close()
			up = r.StatusCode == 200
		}
	}

	counts := map[string]int{"complete": 0, "429": 0, "other": 0}
	whys := map[string]int{}
	var lat []float64
	for _, o := range outs {
		counts[o.class]++
		if o.class == "other" {
			whys[o.why]++
		}
		if o.class == "complete" {
			lat = append(lat, float64(o.latency.Microseconds())/1000)
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)))
		if i >= len(lat) {
			i = len(lat) - 1
		}
		return lat[i]
	}
	growth := 0.0
	if idle > 0 && after > 0 {
		growth = float64(after-idle) / float64(idle)
	}
	out := map[string]any{
		"clients": cfg.clients, "seconds": wall, "requests": len(outs),
		"complete": counts["complete"], "rejected_429": counts["429"], "other": counts["other"],
		"images_per_s": float64(counts["complete"]) / wall,
		"p50_ms":       pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
		"rss_idle_kb": idle, "rss_peak_kb": peak, "rss_after_kb": after, "rss_after_vs_idle": growth,
		"server_alive": up,
	}
	if len(whys) > 0 {
		out["other_reasons"] = whys
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))

	failed := false
	if counts["other"] > 0 {
		fmt.Fprintf(os.Stderr, "load: FAIL: %d request(s) neither complete nor 429: %v\n", counts["other"], whys)
		failed = true
	}
	if !up {
		fmt.Fprintln(os.Stderr, "load: FAIL: the server is gone or does not answer /healthz")
		failed = true
	}
	if idle <= 0 || after <= 0 {
		fmt.Fprintln(os.Stderr, "load: FAIL: no RSS reading (is -pid the server's?)")
		failed = true
	} else if growth > cfg.rssSlack {
		fmt.Fprintf(os.Stderr, "load: FAIL: RSS %d kB after the load is %.1f%% over idle %d kB (allowed %.0f%%)\n",
			after, growth*100, idle, cfg.rssSlack*100)
		failed = true
	}
	if failed {
		return 1
	}
	return 0
}
