// loadgen: the HTTP load the API benchmarks need and wrk cannot make (Go standard library only).
//
//	hold:  N keep-alive connections held open for the whole run, each sending a GET on its own fixed
//	       schedule (open loop: a request is timed from when it was due, so a slow server cannot
//	       slow the load down and hide its own latency).
//	mixed: N simulated users, each on its own keep-alive connection, thinking between requests
//	       (exponential, mean -think), choosing by weight: menu and catalog reads, placing an order,
//	       polling one of their own orders. Latency per route.
//
// Output: one JSON object on stdout.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type recorder struct {
	mu        sync.Mutex
	latencies map[string][]float64 // milliseconds, per route
	errors    map[string]int
}

func newRecorder() *recorder {
	return &recorder{latencies: map[string][]float64{}, errors: map[string]int{}}
}

func (r *recorder) ok(route string, ms float64) {
	r.mu.Lock()
	r.latencies[route] = append(r.latencies[route], ms)
	r.mu.Unlock()
}

func (r *recorder) fail(route, why string) {
	r.mu.Lock()
	r.errors[route+": "+why]++
	r.mu.Unlock()
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func (r *recorder) report(extra map[string]any) {
	routes := map[string]any{}
	total, failed := 0, 0
	for route, l := range r.latencies {
		sort.Float64s(l)
		routes[route] = map[string]any{"requests": len(l), "p50_ms": pct(l, 50), "p90_ms": pct(l, 90),
			"p99_ms": pct(l, 99), "max_ms": pct(l, 100)}
		total += len(l)
	}
	for _, n := range r.errors {
		failed += n
	}
	out := map[string]any{"routes": routes, "requests": total, "errors": failed, "error_kinds": r.errors}
	for k, v := range extra {
		out[k] = v
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// ---- hold ------------------------------------------------------------------------------------

func hold(addr, path string, conns int, rate float64, duration, connectFor time.Duration) {
	rec := newRecorder()
	interval := time.Duration(float64(conns) / rate * float64(time.Second))
	var connected, dropped atomic.Int64
	start := time.Now().Add(connectFor) // every connection is open before the measured schedule starts
	end := start.Add(duration)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * connectFor / time.Duration(conns) / 2) // spread the connects
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				rec.fail("connect", err.Error())
				return
			}
			defer c.Close()
			connected.Add(1)
			reader := bufio.NewReader(c)
			request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: keep-alive\r\n\r\n")
			due := start.Add(time.Duration(rand.Int63n(int64(interval))))
			for due.Before(end) {
				time.Sleep(time.Until(due))
				if _, err := c.Write(request); err != nil {
					rec.fail("GET", "write: "+err.Error())
					dropped.Add(1)
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(reader, nil)
				if err != nil {
					rec.fail("GET", "read: "+err.Error())
					dropped.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					rec.fail("GET", fmt.Sprintf("HTTP %d", resp.StatusCode))
				} else {
					rec.ok("GET", float64(time.Since(due).Microseconds())/1000)
				}
				due = due.Add(interval)
			}
		}(i)
	}
	wg.Wait()
	rec.report(map[string]any{"connections_held": connected.Load(), "connections_dropped": dropped.Load(),
		"offered_rate": rate, "seconds": duration.Seconds()})
}

// ---- mixed -----------------------------------------------------------------------------------

type scenario struct {
	Base    string   `json:"base"`
	Reads   []string `json:"reads"`   // paths read by everyone
	Tokens  []string `json:"tokens"`  // one customer token per user (reused round robin)
	Order   any      `json:"order"`   // the order body
	Weights []int    `json:"weights"` // read, order, poll (percent)
}

func mixed(scenarioFile string, users int, duration, think, warmup time.Duration) {
	raw, err := os.ReadFile(scenarioFile)
	if err != nil {
		panic(err)
	}
	var sc scenario
	if err := json.Unmarshal(raw, &sc); err != nil {
		panic(err)
	}
	body, _ := json.Marshal(sc.Order)
	rec := newRecorder()
	measureFrom := time.Now().Add(warmup) // requests before this are not recorded
	end := measureFrom.Add(duration)
	var wg sync.WaitGroup
	var seq atomic.Int64
	for u := 0; u < users; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}}
			auth := "Bearer " + sc.Tokens[u%len(sc.Tokens)]
			rng := rand.New(rand.NewSource(int64(u) + 1))
			var mine []string
			time.Sleep(time.Duration(rng.Int63n(int64(think) + 1)))
			for time.Now().Before(end) {
				pick := rng.Intn(100)
				var req *http.Request
				route := ""
				switch {
				case pick < sc.Weights[0] || (pick >= sc.Weights[0]+sc.Weights[1] && len(mine) == 0):
					path := sc.Reads[rng.Intn(len(sc.Reads))]
					route = "GET " + routeOf(path)
					req, _ = http.NewRequest("GET", sc.Base+path, nil)
				case pick < sc.Weights[0]+sc.Weights[1]:
					route = "POST /v1/orders"
					req, _ = http.NewRequest("POST", sc.Base+"/v1/orders", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", fmt.Sprintf("mixed-%d-%d", u, seq.Add(1)))
					req.Header.Set("Authorization", auth)
				default:
					route = "GET /v1/orders/{order_id}"
					req, _ = http.NewRequest("GET", sc.Base+"/v1/orders/"+mine[rng.Intn(len(mine))], nil)
					req.Header.Set("Authorization", auth)
				}
				began := time.Now()
				measured := began.After(measureFrom)
				resp, err := client.Do(req)
				if err != nil {
					rec.fail(route, err.Error())
				} else {
					data, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						rec.fail(route, fmt.Sprintf("HTTP %d", resp.StatusCode))
					} else {
						if measured {
							rec.ok(route, float64(time.Since(began).Microseconds())/1000)
						}
						if route == "POST /v1/orders" {
							var created struct {
								ID string `json:"id"`
							}
							if json.Unmarshal(data, &created) == nil {
								mine = append(mine, created.ID)
							}
						}
					}
				}
				time.Sleep(time.Duration(rng.ExpFloat64() * float64(think)))
			}
		}(u)
	}
	wg.Wait()
	rec.report(map[string]any{"users": users, "seconds": duration.Seconds(), "think_ms": think.Milliseconds(),
		"warmup_seconds": warmup.Seconds()})
}

func routeOf(path string) string {
	parts := strings.Split(strings.SplitN(path, "?", 2)[0], "/")
	for i, p := range parts {
		if len(p) == 36 && strings.Count(p, "-") == 4 {
			parts[i] = "{" + strings.TrimSuffix(parts[i-1], "s") + "_id}"
		}
	}
	return strings.Join(parts, "/")
}

func main() {
	mode := flag.String("mode", "hold", "hold or mixed")
	addr := flag.String("addr", "127.0.0.1:28080", "host:port (hold)")
	path := flag.String("path", "/healthz", "path to GET (hold)")
	conns := flag.Int("conns", 10000, "connections held (hold)")
	rate := flag.Float64("rate", 2000, "requests per second over all connections (hold)")
	connectFor := flag.Duration("connect-for", 10*time.Second, "time to open the connections before the schedule (hold)")
	duration := flag.Duration("duration", 30*time.Second, "how long the measured load runs")
	scenarioFile := flag.String("scenario", "", "JSON scenario (mixed)")
	users := flag.Int("users", 1000, "simulated users (mixed)")
	think := flag.Duration("think", time.Second, "mean think time between a user's requests (mixed)")
	warmup := flag.Duration("warmup", 10*time.Second, "load before the measured run, not recorded (mixed)")
	flag.Parse()
	if *mode == "hold" {
		hold(*addr, *path, *conns, *rate, *duration, *connectFor)
	} else {
		mixed(*scenarioFile, *users, *duration, *think, *warmup)
	}
}
