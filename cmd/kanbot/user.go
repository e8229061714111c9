package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kanbot/kanbot-sidecar/kanbot"
)

// userSummary is a user in `user create` and `user list`.
type userSummary struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Username  string `json:"username"`
	IsAdmin   bool   `json:"is_admin"`
	IsActive  bool   `json:"is_active"`
	IsBanned  bool   `json:"is_banned"`
	CreatedAt string `json:"created_at"`
}

// findUser resolves an identifier (UUID, email or username) or fails with
// USER_NOT_FOUND.
func findUser(cmd *cobra.Command, kb *kanbot.Backend, identifier string) (*kanbot.User, error) {
	u, err := kb.FindUser(cmd.Context(), identifier)
	if errors.Is(err, kanbot.ErrUserNotFound) {
		return nil, fail(codeUserNotFound, "User not found: %s", identifier)
	}
	return u, err
}

// userFilter resolves an optional user filter flag to a user id: "" (no
// filter) when identifier is empty, USER_NOT_FOUND when it names nobody.
func userFilter(cmd *cobra.Command, kb *kanbot.Backend, identifier string) (string, error) {
	if identifier == "" {
		return "", nil
	}
	u, err := findUser(cmd, kb, identifier)
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

// withUser runs f with an open backend and the user that identifier (UUID,
// email or username) names; an unknown identifier fails with USER_NOT_FOUND
// before f runs.
func withUser(cmd *cobra.Command, e *env, identifier string, f func(kb *kanbot.Backend, u *kanbot.User) error) error {
	return withBackend(cmd, e, func(kb *kanbot.Backend) error {
		u, err := findUser(cmd, kb, identifier)
		if err != nil {
			return err
		}
		return f(kb, u)
	})
}

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (an ID is a UUID, an email or a username)"}
	cmd.AddCommand(newUserCreateCmd(e), newUserListCmd(e), newUserGetCmd(e), newUserDeleteCmd(e),
		newUserBanCmd(e, true), newUserBanCmd(e, false), newUserSetAdminCmd(e))
	return cmd
}

func newUserCreateCmd(e *env) *cobra.Command {
	var email, username, password string
	var admin, asJSON bool
	cmd := &cobra.Command{
		Use:   "create --email E --username U",
		Short: "Create a user",
		Long: `Create a user. The password is optional: agents use API keys, and login is
out of scope for the bundled backend; if given it is stored as a PBKDF2 hash.
Fails with EMAIL_EXISTS or USERNAME_EXISTS (compared case-insensitively).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				u, err := kb.CreateUser(cmd.Context(), kanbot.NewUser{Email: email, Username: username, Password: password, Admin: admin})
				switch {
				case errors.Is(err, kanbot.ErrEmailExists):
					return fail(codeEmailExists, "Email already registered")
				case errors.Is(err, kanbot.ErrUsernameExists):
					return fail(codeUsernameExists, "Username already taken")
				case err != nil:
					return err
				}
				data := map[string]any{"id": u.ID, "email": u.Email, "username": u.Username, "is_admin": u.IsAdmin, "created_at": u.CreatedAt}
				return e.success(asJSON, fmt.Sprintf("User '%s' created successfully", u.Username), data, func(w io.Writer) {
					fmt.Fprintf(w, "User '%s' created successfully\nid: %s\nemail: %s\nadmin: %v\n", u.Username, u.ID, u.Email, u.IsAdmin)
				})
			})
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "email address (required)")
	cmd.Flags().StringVar(&username, "username", "", "username: letters, digits, _ . - (required)")
	cmd.Flags().StringVar(&password, "password", "", "password (optional; see above)")
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user a global admin")
	jsonFlag(cmd, &asJSON)
	requireFlags(cmd, "email", "username")
	return cmd
}

func newUserListCmd(e *env) *cobra.Command {
	var page, limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users, newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if page < 1 || limit < 1 || limit > 1000 {
				return usageError{errors.New("--page must be >= 1 and --limit 1..1000")}
			}
			return withBackend(cmd, e, func(kb *kanbot.Backend) error {
				users, total, err := kb.ListUsers(cmd.Context(), page, limit)
				if err != nil {
					return err
				}
				list := make([]userSummary, len(users))
				for i, u := range users {
					list[i] = userSummary{u.ID, u.Email, u.Username, u.IsAdmin, u.IsActive, u.IsBanned, u.CreatedAt}
				}
				data := map[string]any{"users": list, "page": page, "limit": limit, "total": total}
				return e.successTable(asJSON, fmt.Sprintf("%d user(s)", total), data, "ID\tEMAIL\tUSERNAME\tADMIN\tBANNED\tCREATED", func(tw io.Writer) {
					for _, u := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\n", u.ID, u.Email, u.Username, u.IsAdmin, u.IsBanned, u.CreatedAt)
					}
				})
			})
		},
	}
	cmd.Flags().IntVar(&page, "page", 1, "page number")
	cmd.Flags().IntVar(&limit, "limit", 20, "users per page")
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newUserGetCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a user",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(_ *kanbot.Backend, u *kanbot.User) error {
				data := map[string]any{"id": u.ID, "email": u.Email, "username": u.Username, "language": u.Language,
					"is_admin": u.IsAdmin, "is_active": u.IsActive, "is_banned": u.IsBanned, "banned_at": u.BannedAt,
					"created_at": u.CreatedAt}
				return e.success(asJSON, "User "+u.Username, data, func(w io.Writer) {
					fmt.Fprintf(w, "id: %s\nemail: %s\nusername: %s\nadmin: %v\nactive: %v\nbanned: %v\ncreated_at: %s\n",
						u.ID, u.Email, u.Username, u.IsAdmin, u.IsActive, u.IsBanned, u.CreatedAt)
				})
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newUserDeleteCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a user with their keys, memberships, comments and owned spaces",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(kb *kanbot.Backend, u *kanbot.User) error {
				if err := kb.DeleteUser(cmd.Context(), u.ID); err != nil {
					return err
				}
				return e.success(asJSON, fmt.Sprintf("User '%s' deleted", u.Email), map[string]any{"id": u.ID, "email": u.Email}, nil)
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newUserBanCmd(e *env, ban bool) *cobra.Command {
	var asJSON bool
	use, short, verb := "ban ID", "Ban a user: every API key of theirs gets 403 Account suspended", "banned"
	if !ban {
		use, short, verb = "unban ID", "Lift a ban", "unbanned"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(kb *kanbot.Backend, u *kanbot.User) error {
				u, err := kb.SetBanned(cmd.Context(), u.ID, ban)
				if err != nil {
					return err
				}
				data := map[string]any{"id": u.ID, "email": u.Email, "is_banned": u.IsBanned, "banned_at": u.BannedAt}
				return e.success(asJSON, fmt.Sprintf("User '%s' has been %s", u.Email, verb), data, nil)
			})
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newUserSetAdminCmd(e *env) *cobra.Command {
	var revoke, asJSON bool
	cmd := &cobra.Command{
		Use:   "set-admin ID",
		Short: "Grant (or with --revoke, revoke) global admin",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUser(cmd, e, args[0], func(kb *kanbot.Backend, u *kanbot.User) error {
				u, err := kb.SetAdmin(cmd.Context(), u.ID, !revoke)
				if err != nil {
					return err
				}
				action := "granted to"
				if revoke {
					action = "revoked from"
				}
				data := map[string]any{"id": u.ID, "email": u.Email, "is_admin": u.IsAdmin}
				return e.success(asJSON, fmt.Sprintf("Admin status %s '%s'", action, u.Email), data, nil)
			})
		},
	}
	cmd.Flags().BoolVar(&revoke, "revoke", false, "revoke admin instead of granting it")
	jsonFlag(cmd, &asJSON)
	return cmd
}
