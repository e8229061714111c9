package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

func newSystemCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Health, statistics and version"}
	cmd.AddCommand(newSystemHealthCmd(e), newSystemStatsCmd(e), newSystemVersionCmd(e))
	return cmd
}

func newSystemHealthCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check that the database is reachable and migrated (exit 1 when not)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kb, err := openBackend(cmd, e, kanbot.Config{})
			if err != nil {
				return fail(codeUnhealthy, "unhealthy: %v", err)
			}
			defer kb.Close()
			if err := kb.Ping(cmd.Context()); err != nil {
				return fail(codeUnhealthy, "unhealthy: %v", err)
			}
			v, err := kb.SchemaVersion(cmd.Context())
			if err != nil {
				return fail(codeUnhealthy, "unhealthy: %v", err)
			}
			data := map[string]any{"status": "healthy", "database": "ok", "schema_version": v, "version": version}
			return e.success(asJSON, "System healthy", data, nil)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newSystemStatsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count users, spaces, cards and API keys",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				s, err := kb.Stats(cmd.Context())
				if err != nil {
					return err
				}
				data := map[string]any{
					"users":    map[string]int{"total": s.Users, "admins": s.Admins, "banned": s.Banned},
					"spaces":   s.Spaces,
					"cards":    s.Cards,
					"api_keys": s.APIKeys,
				}
				return e.success(asJSON, "System statistics", data, func(w io.Writer) {
					fmt.Fprintf(w, "users: %d (admins %d, banned %d)\nspaces: %d\ncards: %d\napi keys: %d\n",
						s.Users, s.Admins, s.Banned, s.Spaces, s.Cards, s.APIKeys)
				})
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newSystemVersionCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.success(asJSON, "kanbot "+version, map[string]string{"version": version}, nil)
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
