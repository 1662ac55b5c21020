package runtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompProfile is a seccomp profile in Docker's format (moby's
// profiles/seccomp): a default action and rules, each for the
// architectures, capabilities and kernels its includes and excludes name.
// berth's default is Docker's default profile (defaultSeccomp), and a
// profile of the user's own (--security-opt seccomp=profile.json, which
// the docker CLI sends as JSON) is read into the same type.
type seccompProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	ArchMap         []seccompArchMap         `json:"archMap,omitempty"`
	Syscalls        []seccompRule            `json:"syscalls"`
	Flags           []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	// ListenerPath and ListenerMetadata are where an SCMP_ACT_NOTIFY
	// rule's notifications go (a seccomp agent's socket), passed to runc
	// as moby's setupSeccomp passes them.
	ListenerPath     string `json:"listenerPath,omitempty"`
	ListenerMetadata string `json:"listenerMetadata,omitempty"`
}

type seccompArchMap struct {
	Arch             specs.Arch   `json:"architecture"`
	SubArchitectures []specs.Arch `json:"subArchitectures"`
}

type seccompRule struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args"`
	Includes seccompFilter            `json:"includes"`
	Excludes seccompFilter            `json:"excludes"`
}

// seccompFilter is a rule's condition on the process's bounding set
// (Caps), the machine's architecture (Arches, Go's names) and the kernel
// (MinKernel): as includes, all must hold; as excludes, any.
type seccompFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// seccompArches are the architectures a filter takes on each machine
// (Docker's archMap): a 64-bit x86 process may make 32-bit calls too.
var seccompArches = map[string][]specs.Arch{
	"amd64":   {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	"arm64":   {specs.ArchAARCH64, specs.ArchARM},
	"386":     {specs.ArchX86},
	"arm":     {specs.ArchARM},
	"ppc64le": {specs.ArchPPC64LE},
	"s390x":   {specs.ArchS390X, specs.ArchS390},
	"riscv64": {specs.ArchRISCV64},
}

// errnoEPERM and errnoENOSYS are the errors a refused call gets.
var errnoEPERM, errnoENOSYS uint = 1, 38

// cloneNamespaceFlags are clone's flags that make namespaces
// (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP): refused
// without CAP_SYS_ADMIN, so a container cannot make a user namespace and
// reach the kernel's code for namespace owners from it.
const cloneNamespaceFlags = 0x7E020000

// defaultSeccomp is Docker's default profile (moby v28): every call a
// container commonly makes is allowed, the rest gets EPERM; calls that
// need a capability are allowed only with it in the bounding set; clone
// may not make namespaces, clone3 gets ENOSYS (so that libc falls back to
// clone, whose flags a filter can read), socket may not open AF_VSOCK,
// personality takes only the usual personas.
func defaultSeccomp() seccompProfile {
	allow := func(names string, inc, exc seccompFilter, args ...specs.LinuxSeccompArg) seccompRule {
		return seccompRule{Names: strings.Fields(names), Action: specs.ActAllow, Args: args, Includes: inc, Excludes: exc}
	}
	caps := func(c ...string) seccompFilter { return seccompFilter{Caps: c} }
	arches := func(a ...string) seccompFilter { return seccompFilter{Arches: a} }
	none := seccompFilter{}
	p := seccompProfile{DefaultAction: specs.ActErrno, DefaultErrnoRet: &errnoEPERM, Syscalls: []seccompRule{
		allow(commonSyscalls, none, none),
		allow("process_vm_readv process_vm_writev ptrace", seccompFilter{MinKernel: "4.8"}, none),
		allow("socket", none, none, specs.LinuxSeccompArg{Index: 0, Value: 40, Op: specs.OpNotEqual}), // AF_VSOCK
	}}
	for _, persona := range []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		p.Syscalls = append(p.Syscalls, allow("personality", none, none, specs.LinuxSeccompArg{Index: 0, Value: persona, Op: specs.OpEqualTo}))
	}
	p.Syscalls = append(p.Syscalls,
		allow("sync_file_range2 swapcontext", arches("ppc64le"), none),
		allow("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls", arches("arm", "arm64"), none),
		allow("arch_prctl", arches("amd64", "x32"), none),
		allow("modify_ldt", arches("amd64", "x32", "x86"), none),
		allow("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", arches("s390", "s390x"), none),
		allow("riscv_flush_icache", arches("riscv64"), none),
		allow("open_by_handle_at", caps("CAP_DAC_READ_SEARCH"), none),
		allow("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr "+
			"lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl "+
			"quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare", caps("CAP_SYS_ADMIN"), none),
		allow("clone", none, seccompFilter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}},
			specs.LinuxSeccompArg{Index: 0, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual}),
		// s390 passes clone's flags second.
		allow("clone", arches("s390", "s390x"), caps("CAP_SYS_ADMIN"),
			specs.LinuxSeccompArg{Index: 1, Value: cloneNamespaceFlags, Op: specs.OpMaskedEqual}),
		seccompRule{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &errnoENOSYS, Excludes: caps("CAP_SYS_ADMIN")},
		allow("reboot", caps("CAP_SYS_BOOT"), none),
		allow("chroot", caps("CAP_SYS_CHROOT"), none),
		allow("delete_module init_module finit_module", caps("CAP_SYS_MODULE"), none),
		allow("acct", caps("CAP_SYS_PACCT"), none),
		allow("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", caps("CAP_SYS_PTRACE"), none),
		allow("iopl ioperm", caps("CAP_SYS_RAWIO"), none),
		allow("settimeofday stime clock_settime clock_settime64", caps("CAP_SYS_TIME"), none),
		allow("vhangup", caps("CAP_SYS_TTY_CONFIG"), none),
		allow("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", caps("CAP_SYS_NICE"), none),
		allow("syslog", caps("CAP_SYSLOG"), none),
		allow("bpf", caps("CAP_BPF"), none),
		allow("perf_event_open", caps("CAP_PERFMON"), none),
	)
	return p
}

// commonSyscalls are the calls Docker's default profile allows whatever
// the capabilities (names a machine does not have are skipped by runc).
const commonSyscalls = `accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd
eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock
fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall
riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr setxattrat shmat
shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice
stat stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork
vmsplice wait4 waitid waitpid write writev`

// CheckSeccompProfile checks a --security-opt seccomp profile of the
// user's own at create (moby finds a bad one only at start).
func CheckSeccompProfile(profile string) error {
	if profile == "" || profile == "unconfined" || profile == "builtin" {
		return nil
	}
	_, err := parseSeccompProfile([]byte(profile))
	return err
}

// parseSeccompProfile reads a profile of the user's own, in Docker's
// format, with moby's checks.
func parseSeccompProfile(b []byte) (seccompProfile, error) {
	var p seccompProfile
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("Decoding seccomp profile failed: %w", err)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return p, fmt.Errorf("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	for _, r := range p.Syscalls {
		if r.Name != "" && len(r.Names) > 0 {
			return p, fmt.Errorf("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'")
		}
	}
	return p, nil
}

// spec is the profile as runc takes it for a process whose bounding set
// is caps, on a machine of architecture goarch whose kernel is kernel
// ("6.1.0-…"): the rules whose conditions hold (moby's setupSeccomp).
func (p seccompProfile) spec(caps []string, goarch, kernel string) *specs.LinuxSeccomp {
	out := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, Flags: slices.Clone(p.Flags),
		ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata}
	if p.DefaultErrnoRet != nil {
		errno := *p.DefaultErrnoRet
		out.DefaultErrnoRet = &errno
	}
	out.Architectures = slices.Clone(p.Architectures)
	for _, m := range p.ArchMap {
		if native, ok := seccompArches[goarch]; ok && len(native) > 0 && native[0] == m.Arch {
			out.Architectures = append(append(out.Architectures, m.Arch), m.SubArchitectures...)
		}
	}
	if len(p.Architectures) == 0 && len(p.ArchMap) == 0 {
		out.Architectures = slices.Clone(seccompArches[goarch])
	}
	has := func(c string) bool { return slices.Contains(caps, c) }
	// moby's: a rule applies if every cap it includes is there, its
	// arches name the machine and the kernel is new enough, and no part
	// of its excludes holds.
	included := func(f seccompFilter) bool {
		return !slices.ContainsFunc(f.Caps, func(c string) bool { return !has(c) }) &&
			(len(f.Arches) == 0 || slices.Contains(f.Arches, goarch)) &&
			(f.MinKernel == "" || kernelAtLeast(kernel, f.MinKernel))
	}
	excluded := func(f seccompFilter) bool {
		return slices.ContainsFunc(f.Caps, has) || slices.Contains(f.Arches, goarch) ||
			f.MinKernel != "" && kernelAtLeast(kernel, f.MinKernel)
	}
	for _, r := range p.Syscalls {
		if !included(r.Includes) || excluded(r.Excludes) {
			continue
		}
		names := r.Names
		if r.Name != "" {
			names = []string{r.Name}
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: names, Action: r.Action, ErrnoRet: r.ErrnoRet, Args: r.Args})
	}
	return out
}

// kernelAtLeast compares a kernel release ("6.18.44-fc") with "4.8".
func kernelAtLeast(release, want string) bool {
	version := func(s string) (int, int) {
		major, rest, _ := strings.Cut(s, ".")
		minor, _, _ := strings.Cut(rest, ".")
		minor = strings.TrimRightFunc(minor, func(r rune) bool { return r < '0' || r > '9' })
		a, _ := strconv.Atoi(major)
		b, _ := strconv.Atoi(minor)
		return a, b
	}
	ha, hb := version(release)
	wa, wb := version(want)
	return ha > wa || ha == wa && hb >= wb
}
