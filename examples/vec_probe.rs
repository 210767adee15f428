fn main() {
    for dir in [
        "../shared/sip-test-vectors/rfc4475",
        "../shared/sip-test-vectors/rfc5118",
    ] {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        for p in v {
            let b = std::fs::read(&p).unwrap();
            let r = hakoden::sip::message::parse(&b);
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            match r {
                Ok(_) => println!("{name:28} OK"),
                Err(e) => println!("{name:28} ERR {:?} reply={}", e.error, e.reply.is_some()),
            }
        }
    }
}
