//! CSV files from admins (phonebook and block-list imports, web and console) on arbitrary bytes:
//! decoding, cell splitting, the header and row validation must never panic, and whatever a
//! phonebook import accepts must export and import back.
#![no_main]

use hakoden::apps::{numbers, phonebook};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = numbers::import_csv(data);
    for chosen in [phonebook::ChosenEncoding::Detect, phonebook::ChosenEncoding::ShiftJis] {
        if let Ok(import) = phonebook::import_csv(data, chosen) {
            let fields: Vec<phonebook::EntryFields> = import.entries.into_iter().map(|(_, f)| f).collect();
            let csv = phonebook::export_csv(fields.iter(), phonebook::ExportEncoding::Utf8Bom);
            // Quote doubling can grow a file past the import limit; below it, it must read.
            if csv.len() <= phonebook::MAX_IMPORT_BYTES {
                assert!(phonebook::import_csv(&csv, phonebook::ChosenEncoding::Detect).is_ok());
            }
        }
    }
});
