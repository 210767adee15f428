//! `#C<n>` (customer) and `#T<n>` (case) references in chat text (seed 002 §2.6), which the
//! page turns into links.

/// Most digits of a reference id: ids are u64 but 12 digits cover any real CRM and bound the
/// scan.
const MAX_ID_DIGITS: usize = 12;

/// What a reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// `#C<n>`.
    Customer,
    /// `#T<n>`.
    Case,
}

/// One reference: its byte range in the text, kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ref {
    /// Byte offset of `#`.
    pub start: usize,
    /// Byte offset after the last digit.
    pub end: usize,
    /// Customer or case.
    pub kind: RefKind,
    /// The id.
    pub id: u64,
}

/// Every reference in `text`, in order. A reference must not follow a letter or digit
/// (`abc#C1` is not one) and must end at a non-digit.
pub fn find_refs(text: &str) -> Vec<Ref> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(&b) = bytes.get(i) else { break };
        let kind = match bytes.get(i + 1) {
            Some(b'C') => Some(RefKind::Customer),
            Some(b'T') => Some(RefKind::Case),
            _ => None,
        };
        let after_word = i > 0 && bytes.get(i - 1).is_some_and(|p| p.is_ascii_alphanumeric());
        if b == b'#' && !after_word {
            if let Some(kind) = kind {
                let digits = bytes.iter().skip(i + 2).take_while(|d| d.is_ascii_digit()).count();
                if (1..=MAX_ID_DIGITS).contains(&digits) {
                    let end = i + 2 + digits;
                    if let Some(id) = text.get(i + 2..end).and_then(|s| s.parse().ok()) {
                        out.push(Ref { start: i, end, kind, id });
                        i = end;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_and_case_references_are_found_with_their_ranges() {
        let t = "お客様 #C7 の件は #T12 を見てください";
        let r = find_refs(t);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].kind, r[0].id), (RefKind::Customer, 7));
        assert_eq!(&t[r[0].start..r[0].end], "#C7");
        assert_eq!((r[1].kind, r[1].id), (RefKind::Case, 12));
        assert_eq!(&t[r[1].start..r[1].end], "#T12");
    }

    #[test]
    fn lookalikes_are_not_references() {
        assert!(find_refs("abc#C1 #X1 #C #T9999999999999 #").is_empty());
        assert_eq!(find_refs("#C1").len(), 1);
    }
}
