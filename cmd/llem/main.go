// Command llem records and analyses the energy of LLM inference on NVIDIA
// GPUs. Run `llem --help` for the commands; README.md and docs/ are the
// manual.
package main

import (
	"os"

	"github.com/llem/llem/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
