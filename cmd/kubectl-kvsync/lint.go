package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvsync/kvsync/troubleshoot"
)

// maxFileBytes bounds a linted file.
const maxFileBytes = 16 << 20

func (c *cli) lintCommand() *cobra.Command {
	var allowedTypes []string
	cmd := &cobra.Command{
		Use:   "lint FILE|DIR...",
		Short: "Check SecretSync and SecretProviderClass manifests offline before applying them ('-' reads stdin)",
		Long: `lint checks each SecretSync and SecretProviderClass of the files as the API server, the
controller and the provider will: the CRD schema (types, required fields, enums, unknown fields)
and its CEL rules, the object's name, namespace, labels and annotations, the Secret a SecretSync
describes (a type the controller may write, the data keys the type needs, its labels and
annotations), the Azure provider's parameter rules (keyvaultName, tenantID, clientID, objects...),
and that every sourcePath names an object of a SecretProviderClass given in the same files. A
directory stands for its .yaml, .yml and .json files, subdirectories included. Other kinds are
ignored. Each problem names its file and line. It exits 1 when it finds a problem.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			l, err := troubleshoot.NewLinter()
			if err != nil {
				return &exitError{2, err}
			}
			if cmd.Flags().Changed("allowed-secret-types") {
				l.AllowedSecretTypes = allowedTypes
			}
			files, err := manifestFiles(args)
			if err != nil {
				return &exitError{2, err}
			}
			var inputs []troubleshoot.Input
			for _, file := range files {
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
				fmt.Fprintf(c.out, "%s: no problems found in %d file(s)\n", c.paint(green, "ok"), len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&allowedTypes, "allowed-secret-types", nil,
		"Secret types the cluster's controller may write (its allowedSecretTypes), comma-separated; the default ones when unset")
	return cmd
}

// manifestFiles expands the arguments of lint: a directory stands for its
// .yaml, .yml and .json files, walked in lexical order; "-" and files are
// kept. A directory without such files is an error.
func manifestFiles(args []string) ([]string, error) {
	var files []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if arg == "-" || err != nil || !info.IsDir() {
			files = append(files, arg)
			continue
		}
		before := len(files)
		err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading directory %s: %w", arg, err)
		}
		if len(files) == before {
			return nil, fmt.Errorf("directory %s holds no .yaml, .yml or .json file", arg)
		}
	}
	return files, nil
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
