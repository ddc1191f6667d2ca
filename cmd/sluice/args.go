package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// args returns a verb's positional arguments, applying any of its flags
// that follow them. urfave/cli v2 stops parsing flags at the first
// argument, but administrators write "sluice operator suspend bigmail
// --for 2h" and "sluice queue show ID --json". A lone "--" ends the flags.
func args(c *cli.Context) ([]string, error) {
	var out []string
	in := c.Args().Slice()
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			return append(out, in[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := commandFlag(c, name)
		if f == nil {
			return nil, usageError(fmt.Sprintf("unknown flag %s (see sluice %s --help)", a, commandPath(c)))
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 >= len(in) {
				return nil, usageError(fmt.Sprintf("flag %s needs a value", a))
			}
			i++
			value = in[i]
		}
		if err := c.Set(name, value); err != nil {
			return nil, usageError(fmt.Sprintf("flag %s: %v", a, err))
		}
	}
	return out, nil
}

// commandFlag finds the running verb's flag called name.
func commandFlag(c *cli.Context, name string) cli.Flag {
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
