package auditdb

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// tsLayout is how ts is stored: UTC, fixed width, so text order is time order.
const tsLayout = "2006-01-02T15:04:05.000Z"

// HashSize is the length in bytes of prev_hash and hash.
const HashSize = sha256.Size

// row is one events row in its stored form: what the hash covers. A nil
// pointer (or nil slice for text) is SQL NULL.
type row struct {
	seq            int64
	ts             string
	kind           string
	requestID      *string
	profile        *string
	client         *string
	method         *string
	host           *string
	path           *string
	query          *string
	status         *int64
	code           *string
	outcome        *string
	bytesIn        *int64
	bytesOut       *int64
	durationMS     *float64
	keyFingerprint *string
	detail         *string
	prevHash       []byte
	hash           []byte
}

// chainHash returns SHA-256(prev ‖ canonical(r)); the encoding is specified
// in the package doc ("Hash chain") and must never change for existing rows.
func chainHash(prev []byte, r *row, buf []byte) ([HashSize]byte, []byte) {
	buf = append(buf[:0], prev...)
	buf = appendText(buf, strconv.FormatInt(r.seq, 10))
	buf = appendText(buf, r.ts)
	buf = appendText(buf, r.kind)
	buf = appendOpt(buf, r.requestID)
	buf = appendOpt(buf, r.profile)
	buf = appendOpt(buf, r.client)
	buf = appendOpt(buf, r.method)
	buf = appendOpt(buf, r.host)
	buf = appendOpt(buf, r.path)
	buf = appendOpt(buf, r.query)
	buf = appendInt(buf, r.status)
	buf = appendOpt(buf, r.code)
	buf = appendOpt(buf, r.outcome)
	buf = appendInt(buf, r.bytesIn)
	buf = appendInt(buf, r.bytesOut)
	if r.durationMS == nil {
		buf = append(buf, 0)
	} else {
		buf = appendText(buf, strconv.FormatFloat(*r.durationMS, 'f', 3, 64))
	}
	buf = appendOpt(buf, r.keyFingerprint)
	buf = appendOpt(buf, r.detail)
	return sha256.Sum256(buf), buf
}

func appendText(buf []byte, s string) []byte {
	buf = append(buf, 1)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

func appendOpt(buf []byte, s *string) []byte {
	if s == nil {
		return append(buf, 0)
	}
	return appendText(buf, *s)
}

func appendInt(buf []byte, v *int64) []byte {
	if v == nil {
		return append(buf, 0)
	}
	var tmp [20]byte
	return appendText(buf, string(strconv.AppendInt(tmp[:0], *v, 10)))
}
