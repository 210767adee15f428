//! The `hakoden` command line.
fn main() {
    println!("hakoden {}", hakoden::VERSION);
}
