// Package vault keeps the profiles' API keys encrypted at rest with age and
// decrypted only in memory.
//
// # Files
//
// The identity (identity.txt) is an age X25519 identity, either plain
// ("AGE-SECRET-KEY-1…", as age-keygen writes it) or itself encrypted with an
// age passphrase. Each profile's key lives in vault/<profile>.age, encrypted
// to the identity's recipient plus any extra recipients. Every file is
// written atomically with mode 0600, and a file that group or others can
// read is refused. The files interoperate with the age command:
//
//	age -d -i identity.txt vault/alice.age
//
// # Invariants
//
// A decrypted key exists only inside a [Secret], which prints as [REDACTED]
// through fmt, encoding/json, encoding/text and zerolog. This package never
// logs, and its errors name files, never key material.
package vault
