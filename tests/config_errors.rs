//! Every way a config file can be wrong is refused with the file, the 1-based line and the field.
use hakoden::config::{load_file, parse_str, Config, ConfigError, PortRange};
use std::net::IpAddr;

const FILE: &str = "/etc/hakoden/hakoden.toml";

/// Mirrors `config::load::MAX_EXTENSIONS` (not re-exported by `config`).
const MAX_EXTENSIONS: usize = 500;
/// Mirrors `config::load::MAX_CONFIG_BYTES`.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// A valid file; tests break one line of it. Line numbers below refer to this text.
const GOOD: &str = r#"[sip]
bind = "0.0.0.0"
port = 5060
advertise = "192.168.1.10"
ring_timeout = 60
trust_registered_source = true

[rtp]
ports = "10000-20000"

[[extension]]
number = "201"
name = "Reception"
password = "s3cret-Pass"

[[extension]]
number = "202"
name = "Sales"
password = "An0ther!pass"
call_waiting = false

[[extension]]
number = "203"
name = "電話番"
password = "third-Pass9"
"#;

fn refused(text: &str) -> ConfigError {
    match parse_str(text, FILE) {
        Ok(c) => panic!("accepted a bad config: {c:?}\n{text}"),
        Err(e) => e,
    }
}

/// Replaces the whole line `line` (1-based) of GOOD with `with`.
fn with_line(line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = GOOD.lines().collect();
    lines[line - 1] = with;
    lines.join("\n") + "\n"
}

fn assert_refused(text: &str, line: usize, field: &str) -> ConfigError {
    let e = refused(text);
    assert_eq!(e.file, FILE, "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.field.as_deref(), Some(field), "{e}");
    assert!(!e.message.is_empty());
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{FILE}:{line}: field `{field}`: ")), "{shown}");
    e
}

#[test]
fn the_documented_example_loads_into_the_typed_config() {
    let c = parse_str(GOOD, FILE).unwrap();
    assert_eq!(c.sip.bind, IpAddr::from([0, 0, 0, 0]));
    assert_eq!(c.sip.port, 5060);
    assert_eq!(c.sip.advertise, Some(IpAddr::from([192, 168, 1, 10])));
    assert_eq!(c.sip.ring_timeout_s, 60);
    assert!(c.sip.trust_registered_source);
    assert_eq!(c.rtp.ports, PortRange { lo: 10000, hi: 20000 });
    assert_eq!(c.extensions.len(), 3);
    assert_eq!(c.extensions[0].number, "201");
    assert_eq!(c.extensions[0].password, "s3cret-Pass");
    assert!(c.extensions[0].call_waiting, "call_waiting defaults to true");
    assert!(!c.extensions[1].call_waiting);
    assert_eq!(c.extensions[2].name, "電話番");
}

#[test]
fn every_section_is_optional() {
    assert_eq!(parse_str("", FILE).unwrap(), Config::default());
    assert_eq!(parse_str("# nothing but a comment\n", FILE).unwrap(), Config::default());
    let c = parse_str("[sip]\nport = 5070\n", FILE).unwrap();
    assert_eq!(c.sip.port, 5070);
    assert_eq!(c.rtp, Config::default().rtp);
    let c = parse_str("[sip]\nbind = \"::1\"\n", FILE).unwrap();
    assert_eq!(c.sip.bind, "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn syntax_error_names_the_line() {
    let e = refused(&with_line(3, "port = = 5060"));
    assert_eq!(e.file, FILE);
    assert_eq!(e.line, Some(3), "{e}");
    let e = refused(&with_line(9, "ports = \"10000-20000"));
    assert_eq!(e.line, Some(9), "{e}");
}

#[test]
fn duplicate_key_is_a_syntax_error_on_its_line() {
    let text = GOOD.replacen("port = 5060\n", "port = 5060\nport = 5061\n", 1);
    let e = refused(&text);
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn unknown_key_is_refused() {
    let e = assert_refused(&with_line(5, "ring_timout = 60"), 5, "sip.ring_timout");
    assert!(e.message.contains("ring_timout"), "{e}");
    assert_refused(&with_line(20, "voicemail_box = true"), 20, "extension[2].voicemail_box");
}

#[test]
fn unknown_section_is_refused() {
    let e = refused(&format!("{GOOD}\n[trunk]\nhost = \"x\"\n"));
    assert_eq!(e.line, Some(27), "{e}");
    assert_eq!(e.field.as_deref(), Some("trunk"), "{e}");
}

#[test]
fn wrong_type_is_refused() {
    assert_refused(&with_line(3, "port = \"5060\""), 3, "sip.port");
    assert_refused(&with_line(6, "trust_registered_source = 1"), 6, "sip.trust_registered_source");
    assert_refused(&with_line(17, "number = 202"), 17, "extension[2].number");
    assert_refused(&with_line(20, "call_waiting = \"no\""), 20, "extension[2].call_waiting");
    assert_refused(&with_line(20, "voicemail = \"yes\""), 20, "extension[2].voicemail");
    assert_refused(&with_line(9, "ports = [10000, 20000]"), 9, "rtp.ports");
}

#[test]
fn out_of_range_values_are_refused() {
    assert_refused(&with_line(3, "port = 0"), 3, "sip.port");
    assert_refused(&with_line(3, "port = 65536"), 3, "sip.port");
    assert_refused(&with_line(3, "port = -1"), 3, "sip.port");
    assert_refused(&with_line(5, "ring_timeout = 4"), 5, "sip.ring_timeout");
    assert_refused(&with_line(5, "ring_timeout = 601"), 5, "sip.ring_timeout");
    assert_refused(&with_line(2, "bind = \"192.168.1.300\""), 2, "sip.bind");
    assert_refused(&with_line(4, "advertise = \"pbx.local\""), 4, "sip.advertise");
    assert_refused(&with_line(4, "advertise = \"0.0.0.0\""), 4, "sip.advertise");
    assert_refused(&with_line(9, "ports = \"20000-10000\""), 9, "rtp.ports");
    assert_refused(&with_line(9, "ports = \"10000\""), 9, "rtp.ports");
    assert_refused(&with_line(9, "ports = \"5000-6000\""), 9, "rtp.ports");
}

#[test]
fn ring_timeout_bounds_are_inclusive() {
    assert_eq!(parse_str(&with_line(5, "ring_timeout = 5"), FILE).unwrap().sip.ring_timeout_s, 5);
    assert_eq!(parse_str(&with_line(5, "ring_timeout = 600"), FILE).unwrap().sip.ring_timeout_s, 600);
}

#[test]
fn bad_extension_numbers_are_refused() {
    for bad in ["\"2\"", "\"123456789\"", "\"20a\"", "\"\"", "\" 201\"", "\"２０１\""] {
        assert_refused(&with_line(23, &format!("number = {bad}")), 23, "extension[3].number");
    }
    parse_str(&with_line(23, "number = \"12345678\""), FILE).unwrap();
    parse_str(&with_line(23, "number = \"20\""), FILE).unwrap();
}

#[test]
fn duplicate_extension_number_points_at_the_second_one() {
    let e = assert_refused(&with_line(23, "number = \"201\""), 23, "extension[3].number");
    assert!(e.message.contains("extension[1]"), "{e}");
}

#[test]
fn bad_names_are_refused() {
    assert_refused(&with_line(13, "name = \"\""), 13, "extension[1].name");
    assert_refused(&with_line(13, &format!("name = \"{}\"", "x".repeat(65))), 13, "extension[1].name");
    assert_refused(&with_line(13, "name = \"tab\\there\""), 13, "extension[1].name");
    parse_str(&with_line(13, &format!("name = \"{}\"", "受".repeat(64))), FILE).unwrap();
}

#[test]
fn weak_or_unsafe_passwords_are_refused_without_echoing_them() {
    for bad in ["short7!", "has space1", "quo\\\"te1234", "back\\\\slash12", "single'quote", "ünïcödé-pass"]
    {
        let e = assert_refused(&with_line(14, &format!("password = \"{bad}\"")), 14, "extension[1].password");
        assert!(!e.message.contains(bad), "{e}");
    }
    assert_refused(
        &with_line(14, &format!("password = \"{}\"", "a".repeat(65))),
        14,
        "extension[1].password",
    );
    parse_str(&with_line(14, &format!("password = \"{}\"", "a".repeat(64))), FILE).unwrap();
    parse_str(&with_line(14, "password = \"8chars!!\""), FILE).unwrap();
}

#[test]
fn missing_required_extension_field_is_refused() {
    let e = refused(&with_line(19, "# password removed"));
    assert_eq!(e.field.as_deref().map(|f| f.starts_with("extension[2]")), Some(true), "{e}");
    assert!(e.message.contains("password"), "{e}");
    let line = e.line.unwrap();
    assert!((16..=20).contains(&line), "{e}");
}

#[test]
fn too_many_extensions_are_refused() {
    let mut text = String::new();
    for i in 0..=MAX_EXTENSIONS {
        text +=
            &format!("[[extension]]\nnumber = \"{}\"\nname = \"n\"\npassword = \"password1\"\n", 1000 + i);
    }
    let e = refused(&text);
    assert_eq!(e.field, Some(format!("extension[{}]", MAX_EXTENSIONS + 1)));
}

#[test]
fn load_file_names_the_path_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hakoden.toml");
    std::fs::write(&path, with_line(5, "ring_timeout = 1")).unwrap();
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.line, Some(5));
    assert_eq!(e.field.as_deref(), Some("sip.ring_timeout"));

    std::fs::write(&path, GOOD).unwrap();
    assert_eq!(load_file(&path).unwrap().extensions.len(), 3);
}

#[test]
fn load_file_refuses_missing_binary_and_huge_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = load_file(&missing).unwrap_err();
    assert_eq!(e.file, missing.display().to_string());
    assert_eq!(e.line, None);

    let binary = dir.path().join("bin.toml");
    std::fs::write(&binary, b"[sip]\nport = 5060\n\xff\xfe\n").unwrap();
    assert_eq!(load_file(&binary).unwrap_err().line, Some(3));

    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; MAX_CONFIG_BYTES + 1]).unwrap();
    assert!(load_file(&huge).unwrap_err().message.contains("larger"));
}

#[test]
fn digest_algorithms_are_configurable_and_unknown_ones_refused() {
    use hakoden::config::DigestAlgorithm;
    let c = parse_str("[sip]\nauth_algorithms = [\"SHA-256\", \"md5\"]\n", FILE).expect("valid");
    assert_eq!(c.sip.auth_algorithms, vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5]);
    assert_eq!(Config::default().sip.auth_algorithms, vec![DigestAlgorithm::Md5]);
    let e = refused("[sip]\n\nauth_algorithms = [\"SHA-512\"]\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.field.as_deref(), Some("sip.auth_algorithms"));
    assert!(e.message.contains("SHA-512"), "{e}");
    assert_eq!(refused("[sip]\nauth_algorithms = []\n").field.as_deref(), Some("sip.auth_algorithms"));
}

#[test]
fn supervisor_keys_load_into_the_role_table() {
    use hakoden::apps::supervision::{Mode, Refusal};
    let text = format!("{GOOD}supervisor = true\nsupervises = [\"201\"]\n")
        .replace("name = \"Sales\"", "name = \"Sales\"\nsupervisor = true");
    let c = parse_str(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    let roles = &c.supervisors;
    assert_eq!(roles.check("202", "203", Mode::Barge), Ok(()), "default scope: everyone");
    assert_eq!(roles.check("203", "201", Mode::Whisper), Ok(()));
    assert_eq!(roles.check("203", "202", Mode::Listen), Err(Refusal::OutOfScope));
    assert_eq!(roles.check("201", "202", Mode::Listen), Err(Refusal::NotASupervisor));
}

#[test]
fn supervises_needs_supervisor_and_known_extensions() {
    // GOOD has 25 lines: the keys below land in extension 203 on lines 26 and 27.
    let e = assert_refused(&format!("{GOOD}supervises = [\"201\"]\n"), 26, "extension[3].supervises");
    assert!(e.message.contains("supervisor = true"), "{e}");
    let text = format!("{GOOD}supervisor = true\nsupervises = [\"201\", \"299\"]\n");
    let e = assert_refused(&text, 27, "extension[3].supervises");
    assert!(e.message.contains("299"), "{e}");
    let text = format!("{GOOD}supervisor = true\nsupervises = [\"203\"]\n");
    assert_refused(&text, 27, "extension[3].supervises");
}
