//go:build cgo

package nvml

import (
	"fmt"
	"slices"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llem/llem/record"
)

// Backend is an initialised NVML library and the GPUs opened through it.
type Backend struct {
	lib  nvml.Interface
	gpus []*GPU
	// path is the library Open loaded; empty over go-nvml's mock, where
	// the C state thread cannot run.
	path string

	symMu sync.Mutex
	syms  map[string]bool // symbol name -> present in the loaded library

	closeOnce sync.Once
	closeErr  error
}

var _ record.Backend = (*Backend)(nil)

// Open loads the NVML library, initialises it and opens the GPUs that opts
// names. On a host without the NVIDIA driver it returns an error wrapping
// ErrNoDriver.
func Open(opts Options) (*Backend, error) {
	path := opts.LibraryPath
	if path == "" {
		path = DefaultLibrary
	}
	// nvml.New gives a library object of our own rather than go-nvml's
	// package-global one, so the path option cannot clash with other users.
	b, err := openWith(nvml.New(nvml.WithLibraryPath(path)), opts, path)
	if b != nil {
		b.path = path
	}
	return b, err
}

// openWith opens the backend over lib: the real library, or go-nvml's mock
// in tests. libName only names the library in error messages.
func openWith(lib nvml.Interface, opts Options, libName string) (*Backend, error) {
	if ret := safeInit(lib); ret != nvml.SUCCESS {
		return nil, initError(ret, libName)
	}
	b := &Backend{lib: lib, syms: make(map[string]bool)}
	if err := b.openGPUs(opts.GPUs); err != nil {
		lib.Shutdown()
		return nil, err
	}
	return b, nil
}

// safeInit calls Init. go-nvml's Init reports a failed dlopen as
// ERROR_LIBRARY_NOT_FOUND, but a panic from deeper in the binding must not
// take the recorder down, so it is read as the same thing. (A call into a
// symbol of a library that was never loaded would crash beyond recovery,
// which is why nothing else is called unless Init succeeded.)
func safeInit(lib nvml.Interface) (ret nvml.Return) {
	defer func() {
		if recover() != nil {
			ret = nvml.ERROR_LIBRARY_NOT_FOUND
		}
	}()
	return lib.Init()
}

// initError explains a failed nvmlInit in terms of what the user can do.
func initError(ret nvml.Return, libName string) error {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("%w: cannot load the NVML library %s (is the NVIDIA driver installed, and is its library directory in the loader's path?)", ErrNoDriver, libName)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("%w: %s loaded but the NVIDIA kernel driver is not running (nvmlInit: %v)", ErrNoDriver, libName, ret)
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return fmt.Errorf("nvml: %s does not match the running kernel driver (%v): the driver was probably upgraded without a reboot or module reload", libName, ret)
	case nvml.ERROR_NO_PERMISSION:
		return fmt.Errorf("nvml: no permission to open the NVIDIA devices (%v): check the permissions of /dev/nvidia*", ret)
	default:
		return fmt.Errorf("nvml: nvmlInit failed: %v", ret)
	}
}

func (b *Backend) openGPUs(want []int) error {
	count, ret := b.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return fmt.Errorf("nvml: counting GPUs: %v", ret)
	}
	if count == 0 {
		return fmt.Errorf("nvml: the driver shows no GPU")
	}
	indices := want
	if indices == nil {
		for i := range count {
			indices = append(indices, i)
		}
	}
	indices = slices.Clone(indices)
	slices.Sort(indices)
	for i, idx := range indices {
		if idx < 0 || idx >= count {
			return fmt.Errorf("nvml: no GPU %d: the driver shows %d GPU(s), 0 to %d", idx, count, count-1)
		}
		if i > 0 && indices[i-1] == idx {
			return fmt.Errorf("nvml: GPU %d named twice", idx)
		}
		dev, ret := b.lib.DeviceGetHandleByIndex(idx)
		if ret != nvml.SUCCESS {
			return fmt.Errorf("nvml: opening GPU %d: %v", idx, ret)
		}
		b.gpus = append(b.gpus, newGPU(b, idx, dev))
	}
	return nil
}

// has reports whether the loaded library exports symbol. Calling a symbol
// the library lacks (an older driver) would crash the process, so every
// call newer than the oldest supported drivers is checked first.
func (b *Backend) has(symbol string) bool {
	b.symMu.Lock()
	defer b.symMu.Unlock()
	ok, seen := b.syms[symbol]
	if !seen {
		ok = b.lib.Extensions().LookupSymbol(symbol) == nil
		b.syms[symbol] = ok
	}
	return ok
}

// Name returns "nvml".
func (b *Backend) Name() string { return "nvml" }

// GPUs returns the opened GPUs, ordered by index.
func (b *Backend) GPUs() []record.GPU {
	out := make([]record.GPU, len(b.gpus))
	for i, g := range b.gpus {
		out[i] = g
	}
	return out
}

// Close shuts NVML down. Calling it again does nothing.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		// The state threads call into the library: they stop first.
		for _, g := range b.gpus {
			g.closeStreams()
		}
		if ret := b.lib.Shutdown(); ret != nvml.SUCCESS {
			b.closeErr = fmt.Errorf("nvml: shutdown: %v", ret)
		}
	})
	return b.closeErr
}
