package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

func newDBCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database schema and demo data"}
	cmd.AddCommand(newDBMigrateCmd(e), newDBSeedCmd(e))
	return cmd
}

func newDBMigrateCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create the database if needed and apply pending migrations",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Opening the database applies pending migrations; what remains
			// is to report where the schema stands.
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				v, err := kb.SchemaVersion(cmd.Context())
				if err != nil {
					return err
				}
				data := map[string]any{"schema_version": v}
				return e.success(asJSON, fmt.Sprintf("Database at schema version %d", v), data, nil)
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newDBSeedCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Add a small demo dataset (idempotent; creates no API key)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				res, err := kb.Seed(cmd.Context())
				if err != nil {
					return err
				}
				msg := "Demo data created"
				if !res.Created {
					msg = "Demo data already present"
				}
				return e.success(asJSON, msg, res, nil)
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
