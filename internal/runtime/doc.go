// Package runtime runs containers under runc: it mounts an overlayfs over an
// imported image, writes the OCI bundle (config.json), starts the container
// detached with its stdio in log files, waits for and signals its init,
// runs exec'd processes, and removes everything again. It owns
// Config.StateDir (runc --root), Config.BundleDir and Config.DataDir, the
// cgroups under "berth/", and nothing else; it never touches the network,
// which arrives ready-made as a namespace path.
//
// How processes are tracked. New makes the daemon a child subreaper
// (PR_SET_CHILD_SUBREAPER). runc is always used detached ("run --detach",
// "exec --detach"): runc exits once the process runs, the process is
// re-parented to the daemon, and the daemon reaps it itself through a pidfd
// (pidfd_open, then waitid(P_PIDFD)), so it learns the real exit code. Every
// lookup of a PID is checked against the start time recorded with it
// (/proc/PID/stat field 22), so a recycled PID is never signalled or waited
// on. A daemon that restarts while containers run can no longer reap them
// (they were re-parented to init, or the nearest subreaper, when it died);
// Wait then sees the exit through the pidfd but cannot learn the code and
// returns -1.
//
// Because the daemon is a subreaper, orphans of every command it runs are
// re-parented to it. runc 1.1 reaps its own bootstrap stages; other
// packages that start daemons of their own must reap them.
//
// Host notes (Debian 12, runc 1.1.5, cgroup v1 "hybrid"):
//   - runc needs the cgroup v1 hierarchies mounted under /sys/fs/cgroup in the
//     daemon's mount namespace. "ip netns exec" remounts /sys and hides them
//     ("Devices cgroup isn't mounted"); enter test namespaces with nsenter or
//     unshare instead.
//   - The overlay upper and work directories live in DataDir, which must be
//     on a file system overlayfs accepts as upper (ext4, xfs, tmpfs; not
//     overlayfs itself).
//   - A container's stdout and stderr are files that runc hands to the
//     container directly, so its output survives a daemon crash. A tty
//     container's output goes through the pty master, which only the daemon
//     holds: if the daemon dies, the container's terminal hangs up. Likewise
//     the daemon holds the write end of an open stdin's FIFO; when it dies
//     the container reads EOF unless a client is attached.
//   - Root on this VM lacks CAP_SYS_RESOURCE, so the containers' open files
//     limit is the daemon's own hard limit when that is below Docker's 1048576.
//   - A test that makes a namespace on a locked thread may leave Go's main
//     thread in it (Go parks, not kills, a locked main thread): compare
//     namespaces with a child process's /proc/PID/ns, not /proc/self/ns.
//   - No seccomp profile is applied (Docker applies its default one).
package runtime
