package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names the agent uses. The agent never sets a credential header:
// the sidecar refuses requests that carry one.
const (
	headerProfile      = "X-Kanbot-Profile"
	headerSidecarError = "X-Kanbot-Sidecar-Error"
	headerRequestID    = "X-Request-Id"
)

// maxBody bounds how much of a response the agent reads; Kanbot answers are small.
const maxBody = 4 << 20

// client talks to the sidecar in base-URL mode. It is safe for concurrent use.
type client struct {
	base string
	hc   *http.Client
	// maxRetries bounds retries of a rate-limited (429) request.
	maxRetries int
}

func newClient(base string) *client {
	return &client{
		base: strings.TrimRight(base, "/"),
		hc: &http.Client{
			Timeout: 15 * time.Second,
			// Base-URL mode: no proxy from the environment (a local sidecar
			// must be reached directly), and redirects are not followed.
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		maxRetries: 3,
	}
}

// reply is one HTTP answer, read in full.
type reply struct {
	Status int
	// SidecarError is the X-Kanbot-Sidecar-Error header: set when the sidecar
	// itself refused the request, empty when the answer came from the backend.
	SidecarError string
	RequestID    string
	RetryAfter   string
	Body         []byte
}

// detail returns the human-readable reason in a Kanbot ({"detail": "..."})
// or sidecar ({"error": {"message": "..."}}) error body, or "".
func (r *reply) detail() string {
	var kb struct {
		Detail any `json:"detail"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &kb) != nil {
		return ""
	}
	if s, ok := kb.Detail.(string); ok {
		return s
	}
	if kb.Error.Message != "" {
		return kb.Error.Message
	}
	return ""
}

// describe is a one-line account of r for the agent's output.
func (r *reply) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.Status)
	if r.SidecarError != "" {
		fmt.Fprintf(&b, " %s from sidecar", r.SidecarError)
	} else {
		b.WriteString(" from backend")
	}
	if d := r.detail(); d != "" {
		fmt.Fprintf(&b, ": %s", d)
	}
	if r.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", r.RequestID)
	}
	return b.String()
}

// do sends one request tagged with profile (untagged when profile is "") and
// reads the answer. A 429 from the sidecar is retried after Retry-After, a
// bounded number of times.
func (c *client) do(ctx context.Context, profile, method, path string, body any) (*reply, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode %s %s body: %w", method, path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		r, err := c.once(ctx, profile, method, path, payload)
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusTooManyRequests || attempt >= c.maxRetries {
			return r, nil
		}
		wait := parseRetryAfter(r.RetryAfter)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *client) once(ctx context.Context, profile, method, path string, payload []byte) (*reply, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if profile != "" {
		req.Header.Set(headerProfile, profile)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return &reply{
		Status:       resp.StatusCode,
		SidecarError: resp.Header.Get(headerSidecarError),
		RequestID:    resp.Header.Get(headerRequestID),
		RetryAfter:   resp.Header.Get("Retry-After"),
		Body:         b,
	}, nil
}

// Errors wrapped by call: the status was not the expected one, or the body
// was not the JSON expected. Any other error from call is a transport error.
var (
	errUnexpected = errors.New("unexpected answer")
	errDecode     = errors.New("undecodable answer")
)

// call sends a request that must succeed with status want and decodes the
// JSON answer into out (when out is not nil).
func (c *client) call(ctx context.Context, profile, method, path string, body any, want int, out any) (*reply, error) {
	r, err := c.do(ctx, profile, method, path, body)
	if err != nil {
		return nil, err
	}
	if r.Status != want {
		return r, fmt.Errorf("%w: %s %s as %s: want %d, got %s", errUnexpected, method, path, profile, want, r.describe())
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r, fmt.Errorf("%w: %s %s as %s: %v", errDecode, method, path, profile, err)
		}
	}
	return r, nil
}

// parseRetryAfter turns a Retry-After value (delta seconds) into a wait,
// bounded to [100ms, 5s] so a bad header cannot stall the agent.
func parseRetryAfter(v string) time.Duration {
	const lo, hi = 100 * time.Millisecond, 5 * time.Second
	n, err := strconv.Atoi(strings.TrimSpace(v))
	d := time.Duration(n) * time.Second
	switch {
	case err != nil || d < lo:
		return lo
	case d > hi:
		return hi
	}
	return d
}
