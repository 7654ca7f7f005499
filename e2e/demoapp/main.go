// Command demoapp is the server app of hack/demo.sh: a plain HTTP server that knows
// nothing of the mesh. It answers every request with what it saw (method, path, Host
// and the peer's address) and logs one line per request on stderr, "app: PEER-IP
// METHOD PATH STATUS", so the demo can show where connections came from.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "0.0.0.0:8080", "listen address")
	name := flag.String("name", "web", "the name it greets with")
	flag.Parse()
	logger := log.New(os.Stderr, "app: ", 0)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "hello from %s: %s %s (Host: %s), my peer is %s\n", *name, r.Method, r.URL.RequestURI(), r.Host, r.RemoteAddr)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		logger.Printf("%s %s %s 200", host, r.Method, r.URL.RequestURI())
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("listening on %s", *addr)
	if err := srv.ListenAndServe(); err != nil {
		logger.Fatal(err)
	}
}
