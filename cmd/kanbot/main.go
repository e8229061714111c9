// Command kanbot is the bundled Kanbot backend: the agent-facing API server
// and its admin CLI (see KANBOT_API.md in the design docs and README.md).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "kanbot: not built yet")
	os.Exit(1)
}
