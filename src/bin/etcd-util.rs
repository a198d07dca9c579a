fn main() {
    std::process::exit(reconfig::cli::etcd_util::main());
}
