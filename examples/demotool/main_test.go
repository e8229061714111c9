package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestField(t *testing.T) {
	t.Parallel()
	const secret = "kb_not-a-real-key-but-shaped-like-one-0123456789abc"
	in := `{"success":true,"data":{"id":"1","key":"` + secret + `","n":3}}`
	var out bytes.Buffer
	if err := run([]string{"field", "data.key"}, strings.NewReader(in), &out); err != nil {
		t.Fatalf("field data.key: %v", err)
	}
	if out.String() != secret {
		t.Errorf("field data.key printed %q, want the value with no newline", out.String())
	}
	for _, c := range []struct{ path, in string }{
		{"data.missing", in},
		{"data.n", in},          // not a string
		{"data.key.deeper", in}, // not an object
		{"data", in},            // an object, not a string
		{"data.key", "not json " + secret},
		{"data.key", `{"data":{"key":""}}`},
	} {
		out.Reset()
		err := run([]string{"field", c.path}, strings.NewReader(c.in), &out)
		if err == nil {
			t.Errorf("field %s on %q: no error", c.path, c.in)
			continue
		}
		// Errors must never quote the input: it may be a key.
		if strings.Contains(err.Error(), secret) || strings.Contains(out.String(), secret) {
			t.Errorf("field %s: the error or output reveals the input: %v", c.path, err)
		}
	}
}

func TestPorts(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run([]string{"ports", "3"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	ports := strings.Fields(out.String())
	if len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports 3 = %q, want three distinct ports", ports)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil, {"nope"}, {"ports"}, {"ports", "0"}, {"ports", "x"}, {"ports", "99"},
		{"wait"}, {"wait", "http://127.0.0.1:1/", "soon"}, {"wait", "http://127.0.0.1:1/", "-1s"},
		{"field"}, {"field", "a", "b"},
	} {
		if err := run(args, strings.NewReader("{}"), &bytes.Buffer{}); err == nil {
			t.Errorf("demotool %q: no error", args)
		}
	}
}

func TestWaitTimesOut(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run([]string{"ports", "1"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strings.TrimSpace(out.String()) + "/health"
	err := run([]string{"wait", url, "300ms"}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "did not answer 200 within 300ms") {
		t.Errorf("wait on a closed port = %v, want a timeout error", err)
	}
}
