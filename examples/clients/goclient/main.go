// Command goclient is the Go client snippet: as profile os.Args[1] (default alice),
// it asks the sidecar who it is and how many spaces it can see. Standard
// library only; it holds no key, the sidecar injects it.
//
//	SIDECAR_URL=http://127.0.0.1:8787 go run ./examples/clients/goclient alice
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	base := strings.TrimRight(envOr("SIDECAR_URL", "http://127.0.0.1:8787"), "/")
	profile := "alice"
	if len(os.Args) > 1 {
		profile = os.Args[1]
	}
	hc := &http.Client{
		Timeout: 10 * time.Second,
		// Talk to the sidecar directly: never through HTTP_PROXY.
		Transport: &http.Transport{Proxy: nil},
	}
	var me struct {
		Email string `json:"email"`
	}
	if err := get(hc, base, profile, "/api/v1/users/me", &me); err != nil {
		fail(err)
	}
	var raw json.RawMessage
	if err := get(hc, base, profile, "/api/v1/spaces", &raw); err != nil {
		fail(err)
	}
	var spaces []json.RawMessage
	if json.Unmarshal(raw, &spaces) != nil { // some deployments wrap the list
		var wrapped struct {
			Spaces []json.RawMessage `json:"spaces"`
		}
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			fail(fmt.Errorf("GET /api/v1/spaces: not a list of spaces"))
		}
		spaces = wrapped.Spaces
	}
	fmt.Printf("profile=%s email=%s spaces=%d\n", profile, me.Email, len(spaces))
}

// get fetches path as profile and decodes the JSON answer into out. A
// refusal by the sidecar (X-Kanbot-Sidecar-Error) is told apart from an
// error answer of the backend.
func get(hc *http.Client, base, profile, path string, out any) error {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Kanbot-Profile", profile)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: cannot reach the sidecar at %s: %v", path, base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		if code := resp.Header.Get("X-Kanbot-Sidecar-Error"); code != "" {
			return fmt.Errorf("GET %s: refused by the sidecar: %d %s", path, resp.StatusCode, code)
		}
		return fmt.Errorf("GET %s: backend answered %d: %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
