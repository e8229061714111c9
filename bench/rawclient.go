package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection of the load generator. It is
// deliberately leaner than http.Transport, which hands every request to a
// writer and a reader goroutine per connection: here the worker's own
// goroutine writes the pre-serialized request and parses the response, so
// the load generator costs little CPU on a machine it shares with the
// servers it measures (like wrk). Responses are parsed by net/http
// (http.ReadResponse), so framing (Content-Length, chunked) is handled
// exactly as a Go client would.
type conn struct {
	addr string
	raw  []byte // the serialized request
	c    net.Conn
	br   *bufio.Reader
	buf  []byte // body read buffer, reused
}

// newConn prepares a connection for GET u with header; it dials lazily.
func newConn(u string, header http.Header) (*conn, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if pu.Scheme != "http" {
		return nil, fmt.Errorf("%s: only http:// targets are supported", u)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kanbot-bench\r\n", pu.RequestURI(), pu.Host)
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range header[k] {
			if strings.ContainsAny(k+v, "\r\n") {
				return nil, fmt.Errorf("header %s: line break in name or value", k)
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return &conn{addr: pu.Host, raw: b.Bytes(), buf: make([]byte, 32<<10)}, nil
}

// do sends the request and reads the response to the end. Anything but a
// 200 with a body of exactly upstreamBodySize bytes is an error: a refused or
// broken request must not be counted as a fast one.
func (c *conn) do() error {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c.c = nc
		c.br = bufio.NewReaderSize(nc, 16<<10)
	}
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(c.raw); err != nil {
		c.close()
		return fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.close()
		msg := fmt.Sprintf("status %d", resp.StatusCode)
		if code := resp.Header.Get("X-Kanbot-Sidecar-Error"); code != "" {
			msg += " (sidecar refusal " + code + ")"
		}
		if b, _ := io.ReadAll(io.LimitReader(resp.Body, 200)); len(b) > 0 {
			msg += ": " + strings.TrimSpace(string(b))
		}
		return errors.New(msg)
	}
	var n int64
	for {
		k, err := resp.Body.Read(c.buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.close()
			return fmt.Errorf("read body: %w", err)
		}
	}
	if resp.Close {
		c.close()
	}
	if n != upstreamBodySize {
		return fmt.Errorf("body of %d bytes, want %d", n, upstreamBodySize)
	}
	return nil
}

// close drops the connection; the next do dials again.
func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c, c.br = nil, nil
	}
}
