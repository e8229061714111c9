package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

func newSpaceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "space", Short: "Inspect spaces"}
	cmd.AddCommand(newSpaceListCmd(e), newSpaceGetCmd(e))
	return cmd
}

func newSpaceListCmd(e *env) *cobra.Command {
	var owner string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--owner ID]",
		Short: "List spaces (all, or one owner's)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				ownerID, err := userFilter(cmd, kb, owner)
				if err != nil {
					return err
				}
				spaces, err := kb.ListSpaces(cmd.Context(), ownerID)
				if err != nil {
					return err
				}
				data := map[string]any{"spaces": spaces, "total": len(spaces)}
				return e.successTable(asJSON, fmt.Sprintf("%d space(s)", len(spaces)), data, "ID\tNAME\tTYPE\tOWNER\tMEMBERS", func(tw io.Writer) {
					for _, s := range spaces {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", s.ID, s.Name, s.Type, s.OwnerEmail, s.MemberCount)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "only spaces owned by this user: UUID, email or username")
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newSpaceGetCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a space and its members",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				s, err := kb.GetSpace(cmd.Context(), args[0])
				if errors.Is(err, kanbot.ErrSpaceNotFound) {
					return fail(codeSpaceNotFound, "Space not found: %s", args[0])
				}
				if err != nil {
					return err
				}
				return e.success(asJSON, "Space "+s.Name, s, func(w io.Writer) {
					fmt.Fprintf(w, "id: %s\nname: %s\ntype: %s\nowner: %s\ncreated_at: %s\nmembers:\n", s.ID, s.Name, s.Type, s.OwnerEmail, s.CreatedAt)
					for _, m := range s.Members {
						fmt.Fprintf(w, "  %s (%s) %s\n", m.Email, m.Username, m.Role)
					}
				})
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
