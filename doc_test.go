// Package kanbotsidecar_test holds repository-wide checks: import directions
// and package docs.
package kanbotsidecar_test
