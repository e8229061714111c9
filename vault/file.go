package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/kanbot/kanbot-sidecar/internal/atomicfile"
)

// Errors returned (wrapped) when a vault file cannot be decrypted.
var (
	// ErrWrongIdentity means the file is an age file, but not encrypted to
	// this identity.
	ErrWrongIdentity = errors.New("not encrypted to this identity")
	// ErrCorrupt means the file is not a well-formed age file, or its
	// content failed authentication.
	ErrCorrupt = errors.New("corrupt or not an age file")
	// ErrEmptyKey means an empty key was given to Encrypt or Seal, or a
	// vault file decrypted to nothing.
	ErrEmptyKey = errors.New("empty key")
)

// Ext is the extension of vault files: vault/<name>.age.
const Ext = ".age"

// MaxKeySize bounds a key's length; Kanbot keys are a few dozen bytes.
const MaxKeySize = 16 << 10

// maxFileSize bounds what is read from a vault file: age's header plus a
// key of MaxKeySize is far below it.
const maxFileSize = 1 << 20

// Path returns the vault file of the named profile in dir.
func Path(dir, name string) string { return filepath.Join(dir, name+Ext) }

// checkFileName refuses a name that would put a vault file outside dir or
// hide it. Profile names are validated by the profiles package; this only
// keeps the vault package safe on its own.
func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") ||
		strings.ContainsAny(name, `/\`+"\x00") {
		return fmt.Errorf("vault file name %q is not allowed", name)
	}
	return nil
}

// ParseRecipients parses age recipients ("age1…", or post-quantum
// "age1pq1…"), naming the first one that is not valid.
func ParseRecipients(rs []string) ([]age.Recipient, error) {
	out := make([]age.Recipient, 0, len(rs))
	for i, s := range rs {
		s = strings.TrimSpace(s)
		parsed, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil || len(parsed) != 1 {
			return nil, fmt.Errorf("recipient %d %q: not an age recipient (want age1…)", i+1, s)
		}
		out = append(out, parsed[0])
	}
	return out, nil
}

// Encrypt encrypts key to the identity's recipient plus extra recipients
// (backup or admin keys) and returns a binary age file, the same format as
// `age -r`.
func Encrypt(key []byte, extra []string, id *Identity) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if len(key) > MaxKeySize {
		return nil, fmt.Errorf("key longer than %d bytes", MaxKeySize)
	}
	rs, err := ParseRecipients(append([]string{id.recipient}, extra...))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, rs...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %v", err)
	}
	if _, err := w.Write(key); err != nil {
		return nil, fmt.Errorf("encrypt: %v", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %v", err)
	}
	return b.Bytes(), nil
}

// Decrypt decrypts an age file (binary or armored) with the identity.
// Errors wrap ErrWrongIdentity, ErrCorrupt or ErrEmptyKey and never quote
// the data: age's parse errors echo header lines, and a mistaken plain-text
// key written where a vault file belongs must not reach a log.
func Decrypt(data []byte, id *Identity) (Secret, error) {
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(trimmed, []byte(armor.Header)) {
		r, err := age.Decrypt(armor.NewReader(bytes.NewReader(trimmed)), id.id)
		if err != nil {
			return Secret{}, decryptError(err)
		}
		key, err := io.ReadAll(io.LimitReader(r, MaxKeySize+1))
		if err != nil {
			return Secret{}, ErrCorrupt
		}
		return checkedKey(key)
	}
	// A binary file is decrypted in place: age.Decrypt's streaming reader
	// allocates two 64 KiB chunk buffers per file (150 KB per vault file,
	// 1.5 GB for a 10,000-profile load), DecryptReaderAt one. It
	// authenticates the final chunk (for a key, the only one) before
	// returning, and the size comes from the file's length.
	r, size, err := age.DecryptReaderAt(bytes.NewReader(data), int64(len(data)), id.id)
	if err != nil {
		return Secret{}, decryptError(err)
	}
	if size > MaxKeySize {
		return Secret{}, fmt.Errorf("key longer than %d bytes", MaxKeySize)
	}
	key := make([]byte, size)
	if n, err := r.ReadAt(key, 0); n != len(key) || (err != nil && !errors.Is(err, io.EOF)) {
		return Secret{}, ErrCorrupt
	}
	return checkedKey(key)
}

// decryptError maps an error from age's decryption to ours, without its
// text.
func decryptError(err error) error {
	var noMatch *age.NoIdentityMatchError
	if errors.As(err, &noMatch) {
		return ErrWrongIdentity
	}
	return ErrCorrupt
}

// checkedKey refuses an empty or oversized decrypted key.
func checkedKey(key []byte) (Secret, error) {
	switch {
	case len(key) > MaxKeySize:
		return Secret{}, fmt.Errorf("key longer than %d bytes", MaxKeySize)
	case len(key) == 0:
		return Secret{}, ErrEmptyKey
	}
	return Secret{b: key}, nil
}

// Seal writes key, encrypted to the identity's recipient plus extra, to
// dir/<name>.age: atomically (a reader sees the old file or the new one),
// mode 0600. It creates dir (0700) if needed.
func Seal(dir, name string, key []byte, extra []string, id *Identity) error {
	if err := checkFileName(name); err != nil {
		return err
	}
	data, err := Encrypt(key, extra, id)
	if err != nil {
		return fmt.Errorf("seal %s: %w", Path(dir, name), err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return WriteFile(Path(dir, name), data)
}

// WriteFile writes an already encrypted vault file atomically with mode
// 0600 (for callers that encrypt many keys first, in parallel).
func WriteFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("write vault file: %w", err)
	}
	return nil
}

// Open reads and decrypts dir/<name>.age. It refuses a file that group or
// others can access (*PermissionError), and its errors name the file.
func Open(dir, name string, id *Identity) (Secret, error) {
	if err := checkFileName(name); err != nil {
		return Secret{}, err
	}
	return OpenFile(Path(dir, name), id)
}

// OpenFile is Open for a vault file given by path.
func OpenFile(path string, id *Identity) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("open vault file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Secret{}, fmt.Errorf("stat vault file %s: %w", path, err)
	}
	if err := checkMode(path, fi); err != nil {
		return Secret{}, err
	}
	if !fi.Mode().IsRegular() {
		return Secret{}, fmt.Errorf("vault file %s: not a regular file", path)
	}
	if fi.Size() > maxFileSize {
		return Secret{}, fmt.Errorf("vault file %s: larger than %d bytes: %w", path, maxFileSize, ErrCorrupt)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return Secret{}, fmt.Errorf("read vault file %s: %w", path, err)
	}
	s, err := Decrypt(data, id)
	if err != nil {
		return Secret{}, fmt.Errorf("vault file %s: %w", path, err)
	}
	return s, nil
}

// Remove deletes dir/<name>.age. A file that is already gone is not an
// error, so a remove interrupted half-way can simply be repeated.
func Remove(dir, name string) error {
	if err := checkFileName(name); err != nil {
		return err
	}
	if err := os.Remove(Path(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove vault file: %w", err)
	}
	return nil
}
