fn main() {
    std::process::exit(reconfig::cli::reconfig::main());
}
