package vault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Errors returned (wrapped) by LoadIdentity and ParseIdentity.
var (
	// ErrNotIdentity means the identity file holds neither an age identity
	// nor an age passphrase-encrypted one.
	ErrNotIdentity = errors.New("not an age identity (want AGE-SECRET-KEY-1… as written by age-keygen, or a file encrypted with age -p)")
	// ErrWrongPassphrase means a passphrase-encrypted identity did not
	// decrypt with the passphrase given.
	ErrWrongPassphrase = errors.New("wrong passphrase (or the identity file is encrypted to a recipient, not a passphrase)")
	// ErrNoPassphrase means the identity is passphrase-encrypted and no
	// passphrase source was given.
	ErrNoPassphrase = errors.New("identity is passphrase-encrypted and no passphrase was given")
)

// maxIdentitySize bounds what is read from an identity file; age-keygen
// writes about 200 bytes, an encrypted identity about 600.
const maxIdentitySize = 64 << 10

// DefaultWorkFactor is the scrypt work factor (log2 N) used to encrypt an
// identity with a passphrase, age's own default: about a second to unlock.
const DefaultWorkFactor = 18

// Identity is the sidecar's age identity: it decrypts vault files, and its
// recipient is what every vault file is encrypted to. Printing an Identity
// shows only its public recipient. Safe for concurrent use.
type Identity struct {
	id        age.Identity
	recipient string
	secret    string // the AGE-SECRET-KEY-… line, for Marshal
}

// GenerateIdentity returns a fresh random X25519 identity.
func GenerateIdentity() (*Identity, error) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return x25519IdentityOf(x, x.String()), nil
}

// x25519IdentityOf wraps age's X25519 identity (secret is its
// AGE-SECRET-KEY-1… line). Decryption uses our x25519Identity, which does
// one scalar multiplication per vault file instead of two; should it ever
// disagree with age about the public key, age's own identity is used.
func x25519IdentityOf(x *age.X25519Identity, secret string) *Identity {
	id := &Identity{id: x, recipient: x.Recipient().String(), secret: secret}
	if fast, ok := fastX25519(secret, id.recipient); ok {
		id.id = fast
	}
	return id
}

// Recipient returns the identity's public age recipient ("age1…").
func (id *Identity) Recipient() string { return id.recipient }

// String shows the recipient only, never the secret key.
func (id Identity) String() string { return "vault.Identity(" + id.recipient + ")" }

// GoString shows the recipient only, never the secret key.
func (id Identity) GoString() string { return id.String() }

// Format makes every fmt verb print the recipient only: without it %v would
// print the unexported fields, secret key included. Value receivers, so a
// copied Identity is covered too.
func (id Identity) Format(f fmt.State, _ rune) { io.WriteString(f, id.String()) }

// Marshal returns the identity as age-keygen writes it: comment lines with
// the creation time and public key, then the AGE-SECRET-KEY-1… line.
func (id *Identity) Marshal(now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# created: %s\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", id.recipient)
	fmt.Fprintf(&b, "%s\n", id.secret)
	return b.Bytes()
}

// MarshalEncrypted returns the identity (as Marshal writes it) encrypted
// with an age passphrase at scrypt work factor logN (DefaultWorkFactor in
// production; tests use less), ASCII-armored like `age -p -a`.
func (id *Identity) MarshalEncrypted(now time.Time, passphrase []byte, logN int) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("encrypt identity: passphrase must not be empty")
	}
	r, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("encrypt identity: %v", err)
	}
	r.SetWorkFactor(logN)
	var b bytes.Buffer
	aw := armor.NewWriter(&b)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("encrypt identity: %v", err)
	}
	if _, err := w.Write(id.Marshal(now)); err != nil {
		return nil, fmt.Errorf("encrypt identity: %v", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt identity: %v", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("encrypt identity: %v", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// LoadIdentity reads the identity file at path. The file must not be
// accessible by group or others (a *PermissionError says how to fix it).
// If the file is passphrase-encrypted, passphrase is called once to get the
// passphrase; it may be nil when no passphrase source exists, and is not
// called for a plain identity.
func LoadIdentity(path string, passphrase func() ([]byte, error)) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat identity %s: %w", path, err)
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIdentitySize+1))
	if err != nil {
		return nil, fmt.Errorf("read identity %s: %w", path, err)
	}
	if len(data) > maxIdentitySize {
		return nil, fmt.Errorf("identity %s: larger than %d bytes: %w", path, maxIdentitySize, ErrNotIdentity)
	}
	id, err := ParseIdentity(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return id, nil
}

// ParseIdentity parses the contents of an identity file: a plain identity
// (comments and one AGE-SECRET-KEY-1… line) or an age file, binary or
// armored, encrypted with a passphrase and holding a plain identity.
// passphrase is called only in the second case. Errors never quote the
// file's content.
func ParseIdentity(data []byte, passphrase func() ([]byte, error)) (*Identity, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("age-encryption.org/")) || bytes.HasPrefix(trimmed, []byte(armor.Header)) {
		return parseEncryptedIdentity(trimmed, passphrase)
	}
	return parsePlainIdentity(data)
}

func parsePlainIdentity(data []byte) (*Identity, error) {
	var found *Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIdentitySize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("line %d: more than one identity; the sidecar needs exactly one", n)
		}
		// The parse error is not wrapped: age's text may describe the key.
		switch {
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			h, err := age.ParseHybridIdentity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: malformed post-quantum identity: %w", n, ErrNotIdentity)
			}
			found = &Identity{id: h, recipient: h.Recipient().String(), secret: line}
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			x, err := age.ParseX25519Identity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: malformed identity: %w", n, ErrNotIdentity)
			}
			found = x25519IdentityOf(x, line)
		default:
			return nil, fmt.Errorf("line %d: %w", n, ErrNotIdentity)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotIdentity, err)
	}
	if found == nil {
		return nil, fmt.Errorf("no identity found: %w", ErrNotIdentity)
	}
	return found, nil
}

func parseEncryptedIdentity(data []byte, passphrase func() ([]byte, error)) (*Identity, error) {
	if passphrase == nil {
		return nil, ErrNoPassphrase
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, errors.New("passphrase is empty")
	}
	sid, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, fmt.Errorf("passphrase: %v", err)
	}
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(data, []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, sid)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		return nil, ErrWrongPassphrase
	case err != nil:
		return nil, fmt.Errorf("encrypted identity is corrupt: %w", ErrNotIdentity)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxIdentitySize+1))
	if err != nil || len(plain) > maxIdentitySize {
		return nil, fmt.Errorf("encrypted identity is corrupt: %w", ErrNotIdentity)
	}
	id, err := parsePlainIdentity(plain)
	if err != nil {
		return nil, fmt.Errorf("inside the encrypted identity: %w", err)
	}
	return id, nil
}

// WriteIdentityFile writes data (from Marshal or MarshalEncrypted) to path
// with mode 0600, atomically, and never over an existing file: it returns an
// error wrapping fs.ErrExist if path exists, so an identity (and with it
// every vault file) is never lost by accident.
func WriteIdentityFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".identity.tmp-*")
	if err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link below, only the temp name goes
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	// link(2), unlike rename(2), fails if the target exists: atomic and
	// exclusive at once.
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write identity: sync %s: %w", dir, err)
	}
	return nil
}
