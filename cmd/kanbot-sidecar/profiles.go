package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProfilesCmd is a placeholder until the profiles command lands.
func newProfilesCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "profiles",
		Short: "(not built yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("profiles: not implemented yet")
		},
	}
}
