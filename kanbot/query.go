package kanbot

import (
	"context"
	"database/sql"
	"fmt"
)

// querier is what both *sql.DB and *sql.Tx offer, so that read helpers work
// inside and outside a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanner is a *sql.Row or *sql.Rows, for the scanXxx functions.
type scanner interface{ Scan(dest ...any) error }

// queryAll runs query and reads every row with scan. Any failure is wrapped
// with what (e.g. "read tasks"). With no rows it returns an empty, non-nil
// slice, so that the API shows [] rather than null.
func queryAll[T any](ctx context.Context, q querier, what string, scan func(scanner) (*T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
