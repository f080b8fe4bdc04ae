//go:build !cgo

package nvml

import (
	"fmt"

	"github.com/llem/llem/record"
)

// Backend exists in builds without cgo only so that callers compile; Open
// never returns one.
type Backend struct{}

// Open always fails: go-nvml needs cgo to load the driver library.
func Open(opts Options) (*Backend, error) {
	return nil, fmt.Errorf("%w: this llem binary was built without cgo (CGO_ENABLED=0), so it has no NVML support; rebuild with CGO_ENABLED=1", ErrNoDriver)
}

// Name returns "nvml".
func (b *Backend) Name() string { return "nvml" }

// GPUs returns nothing.
func (b *Backend) GPUs() []record.GPU { return nil }

// Close does nothing.
func (b *Backend) Close() error { return nil }
