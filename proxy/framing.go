package proxy

import (
	"context"
	"net"
	"sync"
)

// Go's HTTP server resolves ambiguous request framing before a handler
// sees the request: with both Content-Length and Transfer-Encoding it
// deletes Content-Length, and it folds repeated equal Content-Length values
// into one (differing ones it refuses). That is safe for Go, but the
// sidecar promises to refuse such requests outright (request smuggling,
// DESIGN.md "Refusals"), so it must see the raw head. framingConn watches
// the bytes the server reads from each connection, follows HTTP/1.1
// message framing (heads, fixed-length and chunked bodies) and queues, per
// request head, whether its framing was ambiguous. The handler pops the
// verdict for its request: Go serves one request at a time per connection,
// in order, and has always read a head before its handler runs.
//
// The watcher is only a second opinion: Go's parser is authoritative. If
// the watcher cannot follow the stream (a head beyond maxHeadBytes, a
// Transfer-Encoding Go would refuse, CONNECT/Upgrade, garbage), it stops
// judging that connection; Go still re-frames everything it forwards, so
// no desync with the upstream is possible.
type framingConn struct {
	net.Conn

	mu       sync.Mutex
	verdicts []bool // per request head, oldest first: true = ambiguous

	// parser state, touched only by Read (one reader at a time)
	state     framingState
	head      []byte
	remaining int64 // bytes left in a fixed-length body or chunk data
	line      []byte
	broken    bool
}

type framingState uint8

const (
	stHead framingState = iota
	stFixedBody
	stChunkSize
	stChunkData
	stChunkDataEnd
	stTrailer
)

const maxHeadBytes = 128 << 10

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.broken {
		c.feed(p[:n])
	}
	return n, err
}

// ambiguous pops the verdict for the oldest request head not yet judged.
func (c *framingConn) ambiguous() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.verdicts) == 0 {
		return false
	}
	v := c.verdicts[0]
	c.verdicts = c.verdicts[1:]
	return v
}

func (c *framingConn) stop() {
	c.broken = true
	c.head, c.line = nil, nil
}

func (c *framingConn) feed(b []byte) {
	for len(b) > 0 && !c.broken {
		switch c.state {
		case stHead:
			i := indexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				b = nil
				if len(c.head)+len(c.line) > maxHeadBytes {
					c.stop()
				}
				continue
			}
			c.line = append(c.line, b[:i+1]...)
			b = b[i+1:]
			if len(trimEOL(c.line)) == 0 {
				// An empty line ends a head; before any request line it
				// is skipped (RFC 9112 §2.2).
				if len(c.head) > 0 {
					head := c.head
					c.head = c.head[:0]
					c.judge(head)
				}
			} else {
				c.head = append(c.head, c.line...)
				if len(c.head) > maxHeadBytes {
					c.stop()
				}
			}
			if !c.broken {
				c.line = c.line[:0]
			}
		case stFixedBody:
			if int64(len(b)) < c.remaining {
				c.remaining -= int64(len(b))
				return
			}
			b = b[c.remaining:]
			c.remaining = 0
			c.state = stHead
		case stChunkSize, stChunkDataEnd, stTrailer:
			i := indexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				b = nil
				if len(c.line) > 4096 {
					c.stop()
				}
				continue
			}
			c.line = append(c.line, b[:i+1]...)
			b = b[i+1:]
			c.chunkLine()
		case stChunkData:
			if int64(len(b)) < c.remaining {
				c.remaining -= int64(len(b))
				return
			}
			b = b[c.remaining:]
			c.remaining = 0
			c.state = stChunkDataEnd
		}
	}
}

// judge parses a complete head (request line and header lines).
func (c *framingConn) judge(head []byte) {
	var clCount int
	var clValue int64 = -1
	te, chunked := false, false
	first := true
	method := ""
	for len(head) > 0 {
		i := indexByte(head, '\n')
		var line []byte
		if i < 0 {
			line, head = head, nil
		} else {
			line, head = head[:i], head[i+1:]
		}
		line = trimCR(line)
		if first {
			first = false
			if sp := indexByte(line, ' '); sp > 0 {
				method = string(line[:sp])
			}
			continue
		}
		colon := indexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		switch {
		case equalFoldASCII(name, "content-length"):
			clCount++
			if v, ok := parseDecimal(value); ok {
				clValue = v
			} else {
				clValue = -2
			}
		case equalFoldASCII(name, "transfer-encoding"):
			te = true
			chunked = hasSuffixFold(value, "chunked")
		case equalFoldASCII(name, "upgrade"):
			c.stop() // the connection may stop being HTTP
		}
	}
	c.mu.Lock()
	c.verdicts = append(c.verdicts, clCount > 1 || (clCount > 0 && te))
	c.mu.Unlock()
	switch {
	case method == "CONNECT":
		c.stop()
	case te && chunked:
		c.state = stChunkSize
	case te, clValue == -2:
		c.stop() // Go answers 400/501 and closes
	case clValue > 0:
		c.state, c.remaining = stFixedBody, clValue
	default:
		c.state = stHead
	}
}

func (c *framingConn) chunkLine() {
	line := trimSpace(trimCR(trimLF(c.line)))
	c.line = c.line[:0]
	switch c.state {
	case stChunkSize:
		if i := indexByte(line, ';'); i >= 0 {
			line = trimSpace(line[:i])
		}
		size, ok := parseHex(line)
		if !ok {
			c.stop()
			return
		}
		if size == 0 {
			c.state = stTrailer
			return
		}
		c.state, c.remaining = stChunkData, size
	case stChunkDataEnd:
		if len(line) != 0 {
			c.stop()
			return
		}
		c.state = stChunkSize
	case stTrailer:
		if len(line) == 0 {
			c.state = stHead
		}
	}
}

type framingConnKey struct{}

// connContext puts a framingConn into the request context (http.Server's
// ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingConnKey{}, fc)
	}
	return ctx
}

// ambiguousFraming pops the framing verdict of the request being handled.
func ambiguousFraming(ctx context.Context) bool {
	fc, _ := ctx.Value(framingConnKey{}).(*framingConn)
	return fc != nil && fc.ambiguous()
}

// framingListener wraps every accepted connection in a framingConn.
type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimLF(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return b[:len(b)-1]
	}
	return b
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// trimEOL removes one trailing line ending (LF or CRLF).
func trimEOL(b []byte) []byte { return trimCR(trimLF(b)) }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && equalFoldASCII(b[len(b)-len(lower):], lower)
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isHex(c) {
			return 0, false
		}
		v = v<<4 | int64(unhex(c))
	}
	return v, true
}
