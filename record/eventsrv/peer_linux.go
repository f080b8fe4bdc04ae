package eventsrv

import (
	"net"
	"os"
	"syscall"
)

// peerAllowed accepts a connection only from the recording user (or root,
// who could bypass the socket's mode anyway). The socket is 0600, but it is
// created with the process umask and tightened just after, and a connection
// made in that instant would otherwise be let in.
func peerAllowed(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return false
	}
	return cred.Uid == uint32(os.Getuid()) || cred.Uid == 0
}
