package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/drctl/drctl/internal/operator"
)

// show is the one shape of a read command: -o is checked before anything
// is dialled, read asks Temporal, and stdout gets one JSON document or
// print's table.
func show[T any](a *app, cmd *cobra.Command, read func(context.Context, *operator.Operator) (T, error), print func(io.Writer, T)) error {
	asJSON, err := a.jsonOutput()
	if err != nil {
		return err
	}
	op, err := a.operator(cmd.Context())
	if err != nil {
		return err
	}
	v, err := read(cmd.Context(), op)
	if err != nil {
		return err
	}
	if asJSON {
		return operator.JSON(cmd.OutOrStdout(), v)
	}
	print(cmd.OutOrStdout(), v)
	return nil
}

// optionalArg is the one optional argument of a read command ("" when
// none was given).
func optionalArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}
