package auditdb

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Export formats.
const (
	FormatJSONL = "jsonl" // one JSON object per line
	FormatJSON  = "json"  // one JSON array
	FormatCSV   = "csv"   // a header row (CallColumns), then one row per call
)

// Export streams the calls matching f to w in format, oldest first unless
// f.Newest, and returns how many it wrote. Rows are encoded as they are read,
// so memory stays flat for any number of rows. If progress is not nil it is
// called with the running count every 10,000 rows and at the end.
func (db *DB) Export(ctx context.Context, w io.Writer, format string, f Filter, progress func(n int64)) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	var emit func(Call) error
	var finish func() error
	switch format {
	case FormatJSONL, FormatJSON:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		if format == FormatJSON {
			bw.WriteString("[")
		}
		emit = func(c Call) error {
			if format == FormatJSON {
				sep := ",\n"
				if n == 0 {
					sep = "\n"
				}
				bw.WriteString(sep)
			}
			return enc.Encode(c) // Encode ends with '\n'; harmless inside the array
		}
		finish = func() error {
			if format == FormatJSON {
				_, err := bw.WriteString("]\n")
				return err
			}
			return nil
		}
	case FormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(CallColumns); err != nil {
			return 0, err
		}
		rec := make([]string, len(CallColumns))
		emit = func(c Call) error {
			callRecord(c, rec)
			return cw.Write(rec)
		}
		finish = func() error {
			cw.Flush()
			return cw.Error()
		}
	default:
		return 0, fmt.Errorf("export format %q: want %s, %s or %s", format, FormatJSONL, FormatJSON, FormatCSV)
	}
	err := db.Calls(ctx, f, func(c Call) error {
		if err := emit(c); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		n++
		if progress != nil && n%10000 == 0 {
			progress(n)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := finish(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// callRecord fills rec (len(CallColumns)) with c's CSV fields.
func callRecord(c Call, rec []string) {
	rec[0] = strconv.FormatInt(c.Seq, 10)
	rec[1] = c.RequestID
	rec[2] = c.StartedAt.UTC().Format(tsLayout)
	rec[3] = c.Profile
	rec[4] = c.Client
	rec[5] = c.Method
	rec[6] = c.Host
	rec[7] = c.Path
	rec[8] = strconv.Itoa(c.Status)
	rec[9] = c.Outcome
	rec[10] = c.Code
	rec[11] = strconv.FormatFloat(c.DurationMS, 'f', -1, 64)
	rec[12] = strconv.FormatInt(c.BytesIn, 10)
	rec[13] = strconv.FormatInt(c.BytesOut, 10)
	rec[14] = c.KeyFingerprint
}

// ParseCSVCall is the inverse of an Export CSV row (columns as CallColumns),
// for tools that read exports back.
func ParseCSVCall(rec []string) (Call, error) {
	if len(rec) != len(CallColumns) {
		return Call{}, fmt.Errorf("csv call: %d fields, want %d", len(rec), len(CallColumns))
	}
	var c Call
	var err error
	num := func(s string) int64 {
		v, e := strconv.ParseInt(s, 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("csv call: %q is not an integer", s)
		}
		return v
	}
	c.Seq = num(rec[0])
	c.RequestID = rec[1]
	if c.StartedAt, err = time.Parse(tsLayout, rec[2]); err != nil {
		return Call{}, fmt.Errorf("csv call: started_at %q: %w", rec[2], err)
	}
	c.Profile, c.Client, c.Method, c.Host, c.Path = rec[3], rec[4], rec[5], rec[6], rec[7]
	c.Status = int(num(rec[8]))
	c.Outcome, c.Code = rec[9], rec[10]
	if c.DurationMS, err = strconv.ParseFloat(rec[11], 64); err != nil {
		return Call{}, fmt.Errorf("csv call: duration_ms %q: %w", rec[11], err)
	}
	c.BytesIn, c.BytesOut = num(rec[12]), num(rec[13])
	c.KeyFingerprint = rec[14]
	return c, err
}
