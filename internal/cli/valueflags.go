package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// valueFlag is a string flag of a command whose flags may come before or
// after the runs (llem plot, llem report): urfave/cli stops reading flags
// at the first argument, so the ones after it are read here.
type valueFlag struct{ name, alias, usage, def string }

type valueFlags []valueFlag

// ucli is the flags for urfave/cli (those given before the runs).
func (fs valueFlags) ucli() []ucli.Flag {
	var flags []ucli.Flag
	for _, f := range fs {
		sf := &ucli.StringFlag{Name: f.name, Usage: f.usage, Value: f.def}
		if f.alias != "" {
			sf.Aliases = []string{f.alias}
		}
		flags = append(flags, sf)
	}
	return flags
}

// list names the flags for an error message: "--kind, -o, --width".
func (fs valueFlags) list() string {
	var names []string
	for _, f := range fs {
		if len(f.alias) == 1 {
			names = append(names, "-"+f.alias)
		} else {
			names = append(names, "--"+f.name)
		}
	}
	return strings.Join(names, ", ")
}

// split separates the runs from the flags given after them; help is set
// when -h or --help is among them.
func (fs valueFlags) split(args []string) (runs []string, vals map[string]string, help bool, err error) {
	vals = map[string]string{}
	lookup := func(name string) string {
		for _, f := range fs {
			if name == f.name || (f.alias != "" && name == f.alias) {
				return f.name
			}
		}
		return ""
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(runs, args[i+1:]...), vals, false, nil
		case a == "-h" || a == "--help" || a == "-help":
			return nil, nil, true, nil
		case len(a) > 1 && a[0] == '-':
			raw, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			name := lookup(raw)
			if name == "" {
				return nil, nil, false, fmt.Errorf("unknown flag %s (flags: %s)", a, fs.list())
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, nil, false, fmt.Errorf("%s needs a value", a)
				}
				value = args[i+1]
				i++
			}
			if _, dup := vals[name]; dup {
				return nil, nil, false, fmt.Errorf("--%s given twice", name)
			}
			vals[name] = value
		default:
			runs = append(runs, a)
		}
	}
	return runs, vals, false, nil
}

// values merges the flags given before the runs (c) with those after
// them; one given on both sides must agree.
func (fs valueFlags) values(c *ucli.Context, after map[string]string) (map[string]string, error) {
	get := map[string]string{}
	for _, f := range fs {
		v, ok := after[f.name]
		switch {
		case c.IsSet(f.name) && ok && v != c.String(f.name):
			return nil, fmt.Errorf("--%s given twice (%s and %s)", f.name, c.String(f.name), v)
		case ok:
			get[f.name] = v
		default:
			get[f.name] = c.String(f.name)
		}
	}
	return get, nil
}
