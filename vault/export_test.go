package vault

import "filippo.io/age"

// DecryptingIdentity returns the age.Identity that Decrypt uses for id
// (ours, for an X25519 identity), and age's own identity for the same key:
// the reference it is compared with.
func DecryptingIdentity(id *Identity) (ours, ref age.Identity, err error) {
	x, err := age.ParseX25519Identity(id.secret)
	if err != nil {
		return nil, nil, err
	}
	return id.id, x, nil
}
