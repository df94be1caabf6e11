package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kvsync/kvsync/troubleshoot"
)

// maxFileBytes bounds a linted file.
const maxFileBytes = 16 << 20

func (c *cli) lintCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lint FILE...",
		Short: "Check SecretSync and SecretProviderClass manifests offline before applying them ('-' reads stdin)",
		Long: `lint checks each SecretSync and SecretProviderClass of the files as the API server and the
provider will: the CRD schema (types, required fields, enums, unknown fields) and its CEL rules,
the object's name, the Azure provider's parameter rules (keyvaultName, tenantID, clientID,
objects...), and that every sourcePath names an object of a SecretProviderClass given in the same
files. Other kinds are ignored. It exits 1 when it finds a problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			l, err := troubleshoot.NewLinter()
			if err != nil {
				return &exitError{2, err}
			}
			var inputs []troubleshoot.Input
			for _, file := range args {
				data, err := readFile(cmd.InOrStdin(), file)
				if err != nil {
					return &exitError{2, err}
				}
				inputs = append(inputs, troubleshoot.Input{File: file, Data: data})
			}
			problems := l.LintFiles(inputs)
			if problems == nil {
				problems = []troubleshoot.Problem{}
			}
			if c.output != "" {
				if err := c.encode(problems); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintln(c.out, p.String())
				}
			}
			if len(problems) > 0 {
				return &exitError{1, fmt.Errorf("%d problem(s) found", len(problems))}
			}
			if c.output == "" {
				fmt.Fprintf(c.out, "%s: no problems found\n", c.paint(green, "ok"))
			}
			return nil
		},
	}
}

func readFile(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxFileBytes>>20)
	}
	return data, nil
}
