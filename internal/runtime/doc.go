// Package runtime runs containers under runc: it mounts an overlayfs over an
// imported image, writes the OCI bundle (config.json), starts the container
// detached with its output copied into its log, waits for and signals its init,
// runs exec'd processes, and removes everything again. It owns
// Config.StateDir (runc --root), Config.BundleDir and Config.DataDir, its
// containers' cgroups (under "berth/" or their --cgroup-parent), and
// nothing else; it never touches the network,
// which arrives ready-made as a namespace path.
//
// How processes are tracked. runc is always used detached ("run --detach",
// "exec --detach") and always started by the reaper (reaper_linux.go): a
// small process of its own, one per exec-root, that New finds or starts
// and that outlives the daemon. When runc exits, the process it started is
// re-parented to the reaper (a child subreaper), which records each exit
// code in a file (exits_linux.go) before it reaps the process. The daemon
// watches each process through a pidfd and, once it has exited, reads its
// record: a restarted daemon learns the codes of containers that ended
// while it was down, as Docker's shims keep them. Every lookup of a PID is
// checked against the start time recorded with it (/proc/PID/stat field
// 22), so a recycled PID is never signalled or waited on. The daemon is
// a child subreaper too: should the reaper it started die, the containers
// come to it and it collects their codes itself. Only a container whose
// reaper died after (or with) the daemon that started it ends with its
// code unknown: Wait returns -1.
//
// The reaper also reaps what a failed runc leaves behind ("runc:[1:CHILD]"
// orphans), which used to stay zombies under the daemon, and copies each
// container's stdout and stderr (pipes it made for the container's runc)
// into the container's log in json-file's format (jsonlog.go): lines
// stamped when read, rotated at the write, kept while no daemon runs.
// It also hands the raw bytes to attached clients (fan.go, AttachOutput),
// and the daemon holds copies of the pipes' read ends, which a new
// reaper adopts if the old one dies.
//
// Host notes (Debian 12, runc 1.1.5, cgroup v1 "hybrid"):
//   - runc needs the cgroup v1 hierarchies mounted under /sys/fs/cgroup in the
//     daemon's mount namespace. "ip netns exec" remounts /sys and hides them
//     ("Devices cgroup isn't mounted"); enter test namespaces with nsenter or
//     unshare instead.
//   - The overlay upper and work directories live in DataDir, which must be
//     on a file system overlayfs accepts as upper (ext4, xfs, tmpfs; not
//     overlayfs itself).
//   - A container's stdout and stderr are pipes the reaper reads, so its
//     output survives a daemon crash. A tty container's output goes
//     through the pty master, which only the daemon holds: if the daemon
//     dies, the container's terminal hangs up. Likewise
//     the daemon holds the write end of an open stdin's FIFO; when it dies
//     the container reads EOF unless a client is attached.
//   - Root on this VM lacks CAP_SYS_RESOURCE, so the containers' open files
//     limit is the daemon's own hard limit when that is below Docker's 1048576.
//   - A test that makes a namespace on a locked thread may leave Go's main
//     thread in it (Go parks, not kills, a locked main thread): compare
//     namespaces with a child process's /proc/PID/ns, not /proc/self/ns.
//
// Confinement (spec.go, seccomp.go): every container gets Docker's
// defaults, built by ociSpec, a pure function of the container's Spec and
// of the host's facts (hostFacts: the daemon's effective capabilities, the
// host's devices, the kernel and the machine, read at the edge in
// hostfacts_linux.go): the capability set, masked and read-only paths,
// the device cgroup, Docker's default seccomp profile (rules chosen for
// the bounding set, as moby's), and the limits (LinuxResources, which
// runc update takes too). --privileged, --security-opt and the namespace
// modes change those and nothing else. OOMWatch tells the daemon of OOM
// kills in a container's memory cgroup.
package runtime
