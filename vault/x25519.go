package vault

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// x25519Identity decrypts age's X25519 recipient stanzas like
// age.X25519Identity, at half the cost: age's identity calls x/crypto's
// curve25519.X25519, which derives the public key from the scalar on every
// call, so every vault file costs two scalar multiplications. This one
// keeps a crypto/ecdh private key, whose public key is computed once, and
// does one ECDH per stanza. Loading 10,000 profiles is 10,000 stanzas.
//
// unwrap mirrors filippo.io/age v1.3.2's x25519.go step by step (stanza
// type, argument count, strict unpadded base64 share of 32 bytes, all-zero
// shared secret rejected, HKDF-SHA256 with salt = share ‖ our public key
// and info "age-encryption.org/v1/X25519", ChaCha20-Poly1305 with a zero
// nonce over a 16-byte file key); TestX25519IdentityMatchesAge and
// FuzzX25519IdentityMatchesAge compare the two. age.Decrypt still parses
// the header and checks its MAC with the file key we return. Safe for
// concurrent use.
type x25519Identity struct {
	priv *ecdh.PrivateKey
	pub  []byte // priv.PublicKey().Bytes()
}

var _ age.Identity = (*x25519Identity)(nil)

const (
	x25519Label  = "age-encryption.org/v1/X25519"
	x25519Type   = "X25519"
	fileKeySize  = 16 // age's file key
	secretKeyHRP = "age-secret-key-"
)

// stanzaB64 is age's base64 for stanza arguments and bodies: standard
// alphabet, no padding, canonical encodings only.
var stanzaB64 = base64.RawStdEncoding.Strict()

// fastX25519 returns our X25519 identity for secret (an AGE-SECRET-KEY-1…
// line that age.ParseX25519Identity accepted) and checks that its public
// key is recipient (age's own derivation). ok is false if anything
// disagrees; the caller then keeps age's identity, which is always
// correct, only slower.
func fastX25519(secret, recipient string) (id *x25519Identity, ok bool) {
	hrp, scalar, err := bech32Decode(secret)
	if err != nil || hrp != secretKeyHRP || len(scalar) != 32 {
		return nil, false
	}
	priv, err := ecdh.X25519().NewPrivateKey(scalar)
	if err != nil {
		return nil, false
	}
	hrp, pub, err := bech32Decode(recipient)
	if err != nil || hrp != "age" || string(pub) != string(priv.PublicKey().Bytes()) {
		return nil, false
	}
	return &x25519Identity{priv: priv, pub: pub}, true
}

// Unwrap implements age.Identity: the file key from the first X25519
// stanza encrypted to us, age.ErrIncorrectIdentity if none is, or the
// error of a malformed X25519 stanza (as age's multiUnwrap does).
func (i *x25519Identity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		fileKey, err := i.unwrap(s)
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return fileKey, nil
	}
	return nil, age.ErrIncorrectIdentity
}

func (i *x25519Identity) unwrap(s *age.Stanza) ([]byte, error) {
	if s.Type != x25519Type {
		return nil, age.ErrIncorrectIdentity
	}
	if len(s.Args) != 1 {
		return nil, errors.New("invalid X25519 recipient block")
	}
	// base64's decoder skips CR and LF; age refuses them (malleability).
	if strings.ContainsAny(s.Args[0], "\r\n") {
		return nil, errors.New("failed to parse X25519 recipient: unexpected newline character")
	}
	share, err := stanzaB64.DecodeString(s.Args[0])
	if err != nil {
		return nil, fmt.Errorf("failed to parse X25519 recipient: %v", err)
	}
	if len(share) != 32 {
		return nil, errors.New("invalid X25519 recipient block")
	}
	remote, err := ecdh.X25519().NewPublicKey(share)
	if err != nil {
		return nil, fmt.Errorf("invalid X25519 recipient: %v", err)
	}
	// ECDH fails on an all-zero shared secret (a low-order share), as
	// curve25519.X25519 does for age.
	shared, err := i.priv.ECDH(remote)
	if err != nil {
		return nil, fmt.Errorf("invalid X25519 recipient: %v", err)
	}
	salt := make([]byte, 0, len(share)+len(i.pub))
	salt = append(salt, share...)
	salt = append(salt, i.pub...)
	wrappingKey, err := hkdf.Key(sha256.New, shared, salt, x25519Label, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(wrappingKey)
	if err != nil {
		return nil, err
	}
	if len(s.Body) != fileKeySize+aead.Overhead() {
		return nil, errors.New("invalid X25519 recipient block: incorrect file key size")
	}
	var nonce [chacha20poly1305.NonceSize]byte
	fileKey, err := aead.Open(nil, nonce[:], s.Body, nil)
	if err != nil {
		return nil, age.ErrIncorrectIdentity // encrypted to someone else
	}
	return fileKey, nil
}

// bech32Charset is BIP 173's alphabet, in which age writes its keys.
const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Decode decodes a BIP 173 Bech32 string (age's key encoding) and
// returns its lower-case human-readable part and its data. It checks case
// consistency and the checksum, and refuses non-zero padding, like age's
// internal/bech32. Errors never quote s (it may be a secret key).
func bech32Decode(s string) (hrp string, data []byte, err error) {
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("bech32: mixed case")
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("bech32: separator at an invalid position")
	}
	hrp = s[:pos]
	for i := 0; i < len(hrp); i++ {
		if c := hrp[i]; c < 33 || c > 126 {
			return "", nil, errors.New("bech32: invalid character in the human-readable part")
		}
	}
	values := make([]byte, 0, len(s)-pos-1)
	for i := pos + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", nil, errors.New("bech32: invalid character in the data part")
		}
		values = append(values, byte(d))
	}
	if bech32Polymod(hrp, values) != 1 {
		return "", nil, errors.New("bech32: invalid checksum")
	}
	values = values[:len(values)-6]
	// Regroup 5-bit values into bytes; leftover bits must be fewer than 5
	// and zero.
	var acc uint32
	var bits uint
	for _, v := range values {
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			data = append(data, byte(acc>>bits))
		}
	}
	if bits >= 5 || acc&(1<<bits-1) != 0 {
		return "", nil, errors.New("bech32: invalid padding")
	}
	return hrp, data, nil
}

// bech32Polymod is BIP 173's checksum over the expanded hrp and values.
func bech32Polymod(hrp string, values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	step := func(v byte) {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if top>>i&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	for i := 0; i < len(hrp); i++ {
		step(hrp[i] >> 5)
	}
	step(0)
	for i := 0; i < len(hrp); i++ {
		step(hrp[i] & 31)
	}
	for _, v := range values {
		step(v)
	}
	return chk
}
