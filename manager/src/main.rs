//! The `berthctl` binary: everything is in the library (src/lib.rs).

fn main() {
    berthctl::main()
}
