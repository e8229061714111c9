package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newInitCmd is a placeholder until the init command lands.
func newInitCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "(not built yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("init: not implemented yet")
		},
	}
}
