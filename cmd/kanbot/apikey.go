package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

func newAPIKeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys (stored only as SHA-256)"}
	cmd.AddCommand(newAPIKeyCreateCmd(e), newAPIKeyListCmd(e), newAPIKeyRevokeCmd(e))
	return cmd
}

func newAPIKeyCreateCmd(e *env) *cobra.Command {
	var user, name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --user ID --name N",
		Short: "Create an API key; the key is printed this once only",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withUser(cmd, e, user, func(kb *kanbot.Backend, u *kanbot.User) error {
				k, err := kb.CreateAPIKey(cmd.Context(), u.ID, name)
				if err != nil {
					return err
				}
				data := map[string]any{"id": k.ID, "name": k.Name, "key": k.Key, "user_email": u.Email, "created_at": k.CreatedAt}
				return e.success(asJSON, "API key created successfully", data, func(w io.Writer) {
					fmt.Fprintf(w, "API key created successfully\nid: %s\nuser: %s\nkey: %s\nSave this key: it is not shown again.\n",
						k.ID, u.Email, k.Key)
				})
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "owner: UUID, email or username (required)")
	cmd.Flags().StringVar(&name, "name", "", "key name, 1-100 characters (required)")
	jsonFlag(cmd, &asJSON)
	requireFlags(cmd, "user", "name")
	return cmd
}

// keySummary is a key in `apikey list`: never the key, only the first 12 hex
// digits of its hash.
type keySummary struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	KeyHashPrefix string  `json:"key_hash_prefix"`
	UserID        string  `json:"user_id"`
	CreatedAt     string  `json:"created_at"`
	LastUsed      *string `json:"last_used"`
}

func newAPIKeyListCmd(e *env) *cobra.Command {
	var user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--user ID]",
		Short: "List API keys (all, or one user's)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				userID, err := userFilter(cmd, kb, user)
				if err != nil {
					return err
				}
				keys, err := kb.ListAPIKeys(cmd.Context(), userID)
				if err != nil {
					return err
				}
				list := make([]keySummary, len(keys))
				for i, k := range keys {
					list[i] = keySummary{k.ID, k.Name, k.KeyHashPrefix, k.UserID, k.CreatedAt, k.LastUsed}
				}
				data := map[string]any{"api_keys": list, "total": len(list)}
				return e.successTable(asJSON, fmt.Sprintf("%d key(s)", len(list)), data, "ID\tNAME\tHASH PREFIX\tUSER\tLAST USED", func(tw io.Writer) {
					for _, k := range list {
						last := "-"
						if k.LastUsed != nil {
							last = *k.LastUsed
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.KeyHashPrefix, k.UserID, last)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's keys: UUID, email or username")
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newAPIKeyRevokeCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke (delete) an API key by its id",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := kanbot.ParseID(args[0])
			if !ok {
				return fail(codeInvalidID, "Invalid key ID format: want a UUID")
			}
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				k, err := kb.RevokeAPIKey(cmd.Context(), id, "")
				if errors.Is(err, kanbot.ErrAPIKeyNotFound) {
					return fail(codeKeyNotFound, "API key not found: %s", args[0])
				}
				if err != nil {
					return err
				}
				return e.success(asJSON, fmt.Sprintf("API key '%s' has been revoked", k.Name), map[string]any{"id": k.ID, "name": k.Name}, nil)
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
