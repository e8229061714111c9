package vault

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/chacha20poly1305"

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
	key, err := decryptBinary(data, id.id)
	if err != nil {
		return Secret{}, err
	}
	return checkedKey(key)
}

// Sizes in age's payload (age-encryption.org/v1): a 16-byte nonce, then
// the STREAM of 64 KiB ChaCha20-Poly1305 chunks.
const (
	payloadNonceSize = 16
	payloadChunkSize = 64 << 10
)

// decryptBinary decrypts a binary age file held in memory. A vault file
// holds a key, so its payload is one chunk: age parses the header and
// unwraps the file key (DecryptHeader: stanzas, header MAC),
// and the chunk is opened here as age's STREAM does for a final chunk
// 0: key HKDF-SHA256(file key, salt = payload nonce, info "payload"),
// nonce 11 zero bytes then the last-chunk flag 0x01. That allocates about
// the file's size, where age.Decrypt allocates two 64 KiB chunk buffers
// and DecryptReaderAt one, per file: 10,000 profiles are 10,000 files.
// Larger files go through age.DecryptReaderAt. FuzzDecryptMatchesAge
// checks that the result is age.Decrypt's.
func decryptBinary(data []byte, id age.Identity) ([]byte, error) {
	hdr, payload, ok := cutHeader(data)
	if !ok || len(payload) > payloadNonceSize+payloadChunkSize+chacha20poly1305.Overhead {
		return decryptReaderAt(data, id)
	}
	fileKey, err := age.DecryptHeader(hdr, id)
	if err != nil {
		return nil, decryptError(err)
	}
	if len(payload) < payloadNonceSize+chacha20poly1305.Overhead {
		return nil, ErrCorrupt // no nonce, or a chunk shorter than its tag
	}
	streamKey, err := hkdf.Key(sha256.New, fileKey, payload[:payloadNonceSize], "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, ErrCorrupt
	}
	aead, err := chacha20poly1305.New(streamKey)
	if err != nil {
		return nil, ErrCorrupt
	}
	var nonce [chacha20poly1305.NonceSize]byte
	nonce[len(nonce)-1] = 1 // chunk 0, last chunk
	plain, err := aead.Open(nil, nonce[:], payload[payloadNonceSize:], nil)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// cutHeader splits an age file after its header: after the first line
// that starts with "---" (the MAC line). age's header parser reads line by
// line and stops at that same line (stanza bodies are base64 and stanza
// lines start with "->", so no earlier line starts with "---"), so
// age.DecryptHeader(hdr) sees exactly the header age.Decrypt(data) would,
// while the file is parsed once instead of twice (age.ExtractHeader).
func cutHeader(data []byte) (hdr, payload []byte, ok bool) {
	i := bytes.Index(data, []byte("\n---"))
	if i < 0 {
		return nil, nil, false
	}
	j := bytes.IndexByte(data[i+1:], '\n')
	if j < 0 {
		return nil, nil, false
	}
	end := i + 1 + j + 1
	return data[:end], data[end:], true
}

// decryptReaderAt decrypts a binary age file of any size with
// age.DecryptReaderAt, which knows the plaintext size before reading, so
// an oversized key is refused unread.
func decryptReaderAt(data []byte, id age.Identity) ([]byte, error) {
	r, size, err := age.DecryptReaderAt(bytes.NewReader(data), int64(len(data)), id)
	if err != nil {
		return nil, decryptError(err)
	}
	if size > MaxKeySize {
		return nil, fmt.Errorf("key longer than %d bytes", MaxKeySize)
	}
	key := make([]byte, size)
	if n, err := r.ReadAt(key, 0); n != len(key) || (err != nil && !errors.Is(err, io.EOF)) {
		return nil, ErrCorrupt
	}
	return key, nil
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
