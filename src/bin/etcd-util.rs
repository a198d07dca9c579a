fn main() {
    // Like cat or etcdctl, end quietly when the reader of stdout goes away
    // (`etcd-util -k / -r | head`) instead of panicking on the failed write. Only here:
    // the daemon must never die because a pipe it logs to was closed.
    // SAFETY: restoring a signal's default disposition at start-up, before any thread
    // exists; no handler code is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(reconfig::cli::etcd_util::main());
}
