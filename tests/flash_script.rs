//! `scripts/flash.sh` refuses what it must (no confirmation, not a block device, too small,
//! the system disk) and verifies what it writes, on regular files standing in for cards.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flash(args: &[&Path], confirm: Option<&str>, allow_file: bool) -> Output {
    let mut cmd = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/flash.sh"));
    cmd.args(args);
    if let Some(c) = confirm {
        cmd.arg(c);
    }
    if allow_file {
        cmd.env("FLASH_ALLOW_FILE", "1");
    }
    cmd.output().expect("run scripts/flash.sh")
}

fn files(image_len: usize, card_len: u64) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image.img");
    let card = dir.path().join("card");
    std::fs::write(&image, (0..image_len).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).expect("image");
    std::fs::File::create(&card).and_then(|f| f.set_len(card_len)).expect("card");
    (dir, image, card)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn flash_refuses_without_the_confirmation_naming_the_device() {
    let (_d, image, card) = files(4096, 8192);
    let o = flash(&[&image, &card], None, true);
    assert!(!o.status.success() && stderr(&o).contains("--yes-erase-card"), "{}", stderr(&o));
    let o = flash(&[&image, &card], Some("--yes-erase-sda"), true);
    assert!(!o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&card).unwrap(), vec![0u8; 8192], "the card was touched");
}

#[test]
fn flash_refuses_a_target_that_is_not_a_block_device() {
    let (_d, image, card) = files(4096, 8192);
    let o = flash(&[&image, &card], Some("--yes-erase-card"), false);
    assert!(!o.status.success() && stderr(&o).contains("not a block device"), "{}", stderr(&o));
}

#[test]
fn flash_refuses_a_target_smaller_than_the_image() {
    let (_d, image, card) = files(8192, 4096);
    let o = flash(&[&image, &card], Some("--yes-erase-card"), true);
    assert!(!o.status.success() && stderr(&o).contains("smaller than the image"), "{}", stderr(&o));
}

#[test]
fn flash_refuses_the_disk_holding_the_root_filesystem() {
    let src = Command::new("findmnt").args(["-n", "-o", "SOURCE", "/"]).output();
    let Some(src) = src.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()) else {
        eprintln!("SKIPPED: no findmnt");
        return;
    };
    if !Path::new(&src).exists() || !src.starts_with("/dev/") {
        eprintln!("SKIPPED: / is on {src:?}, not a block device (container)");
        return;
    }
    let (_d, image, _card) = files(4096, 8192);
    let name = Path::new(&src).file_name().unwrap().to_string_lossy().into_owned();
    let o = flash(&[&image, Path::new(&src)], Some(&format!("--yes-erase-{name}")), false);
    assert!(!o.status.success(), "flash.sh accepted the root device {src}: {}", stderr(&o));
}

#[test]
fn flash_writes_and_verifies_the_image() {
    let (_d, image, card) = files(100_000, 200_000);
    let o = flash(&[&image, &card], Some("--yes-erase-card"), true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified"));
    let written = std::fs::read(&card).unwrap();
    assert_eq!(written.get(..100_000), Some(std::fs::read(&image).unwrap().as_slice()));
    assert_eq!(written.len(), 200_000, "the card's size changed");
}
