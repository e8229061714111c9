package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newAuditCmd is a placeholder until the audit command lands.
func newAuditCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "audit",
		Short: "(not built yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("audit: not implemented yet")
		},
	}
}
