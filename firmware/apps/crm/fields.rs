//! Typed fields of business formats and custom fields (seed 002 §2.30, §2.31): the attribute
//! kinds and the check a value must pass.

/// Longest text value, in characters; long text gets more.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest long-text (ロングテキスト) value, in characters.
pub const MAX_LONG_TEXT_CHARS: usize = 4000;
/// Most choices of a list, radio or checkbox field.
pub const MAX_CHOICES: usize = 100;

/// 属性 of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// テキスト.
    Text,
    /// 数値: an integer or decimal, optionally negative.
    Number,
    /// 日付: `YYYY-MM-DD`.
    Date,
    /// 電話番号: digits with optional `-`, `(`, `)`, spaces and a leading `+`.
    Phone,
    /// メール.
    Email,
    /// ロングテキスト.
    LongText,
    /// リスト選択: one of the choices.
    List,
    /// ラジオボタン: one of the choices.
    Radio,
    /// チェックボタン: any of the choices, separated by `;` in CSV.
    Checkbox,
    /// 郵便番号: `NNN-NNNN` or seven digits.
    PostalCode,
}

/// Checks `value` for a field of `kind` with `choices`; returns the stored form (trimmed, a
/// postal code with its hyphen) or why it does not fit.
pub fn check_value(kind: FieldKind, choices: &[String], value: &str) -> Result<String, String> {
    let v = value.trim();
    let too_long = |max: usize| v.chars().count() > max;
    if v.chars().any(|c| c.is_control() && !(kind == FieldKind::LongText && (c == '\n' || c == '\t'))) {
        return Err("control characters are not allowed".into());
    }
    match kind {
        FieldKind::Text if too_long(MAX_TEXT_CHARS) => Err(format!("at most {MAX_TEXT_CHARS} characters")),
        FieldKind::LongText if too_long(MAX_LONG_TEXT_CHARS) => {
            Err(format!("at most {MAX_LONG_TEXT_CHARS} characters"))
        }
        FieldKind::Text | FieldKind::LongText => Ok(v.to_string()),
        FieldKind::Number => {
            let body = v.strip_prefix('-').unwrap_or(v);
            let mut parts = body.splitn(2, '.');
            let int = parts.next().unwrap_or_default();
            let frac = parts.next();
            let digits = |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
            if digits(int) && frac.is_none_or(digits) {
                Ok(v.to_string())
            } else {
                Err("a number, like 12 or -3.5".into())
            }
        }
        FieldKind::Date => match crate::apps::timerules::Date::parse(v) {
            Some(_) => Ok(v.to_string()),
            None => Err("a date, YYYY-MM-DD".into()),
        },
        FieldKind::Phone => {
            let body = v.strip_prefix('+').unwrap_or(v);
            let digits = body.bytes().filter(u8::is_ascii_digit).count();
            let ok = body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'(' | b')' | b' '))
                && (3..=20).contains(&digits);
            if ok {
                Ok(v.to_string())
            } else {
                Err("a phone number: digits, with - ( ) allowed".into())
            }
        }
        FieldKind::Email => {
            let ok = v.len() <= 254
                && v.split_once('@').is_some_and(|(l, d)| {
                    !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
                })
                && !v.contains(char::is_whitespace)
                && v.matches('@').count() == 1;
            if ok {
                Ok(v.to_string())
            } else {
                Err("an e-mail address".into())
            }
        }
        FieldKind::List | FieldKind::Radio => {
            if choices.iter().any(|c| c == v) {
                Ok(v.to_string())
            } else {
                Err(format!("one of: {}", choices.join(", ")))
            }
        }
        FieldKind::Checkbox => {
            let mut picked = Vec::new();
            for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                if !choices.iter().any(|c| c == part) {
                    return Err(format!("`{part}` is not one of: {}", choices.join(", ")));
                }
                if !picked.contains(&part) {
                    picked.push(part);
                }
            }
            Ok(picked.join(";"))
        }
        FieldKind::PostalCode => {
            let digits: String = v.chars().filter(|c| *c != '-').collect();
            let shape_ok = v.len() == 7 || (v.len() == 8 && v.as_bytes().get(3) == Some(&b'-'));
            if shape_ok && digits.len() == 7 && digits.bytes().all(|b| b.is_ascii_digit()) {
                Ok(format!("{}-{}", &digits[..3], &digits[3..]))
            } else {
                Err("a postal code, NNN-NNNN".into())
            }
        }
    }
}

/// The digits of a phone number, the key for finding a customer by the caller's number
/// (`03-1234-5678`, `(03) 1234 5678` and `0312345678` are the same; `+81 3…` is `03…`).
pub fn phone_key(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if number.trim_start().starts_with('+') {
        if let Some(rest) = digits.strip_prefix("81") {
            return format!("0{rest}");
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_accepts_its_shape_and_refuses_others() {
        let none: Vec<String> = Vec::new();
        let choices = vec!["契約中".to_string(), "解約".to_string()];
        assert!(check_value(FieldKind::Number, &none, "-3.5").is_ok());
        assert!(check_value(FieldKind::Number, &none, "3.").is_err());
        assert!(check_value(FieldKind::Date, &none, "2026-02-30").is_err());
        assert!(check_value(FieldKind::Date, &none, "2026-02-28").is_ok());
        assert!(check_value(FieldKind::Phone, &none, "03-0000-0001").is_ok());
        assert!(check_value(FieldKind::Phone, &none, "tel").is_err());
        assert!(check_value(FieldKind::Email, &none, "a@example.jp").is_ok());
        assert!(check_value(FieldKind::Email, &none, "a@@b.jp").is_err());
        assert!(check_value(FieldKind::List, &choices, "解約").is_ok());
        assert!(check_value(FieldKind::Radio, &choices, "other").is_err());
        assert_eq!(check_value(FieldKind::Checkbox, &choices, "解約; 契約中;解約").unwrap(), "解約;契約中");
        assert_eq!(check_value(FieldKind::PostalCode, &none, "1000001").unwrap(), "100-0001");
        assert!(check_value(FieldKind::PostalCode, &none, "100-00011").is_err());
        assert!(check_value(FieldKind::Text, &none, "a\u{7}").is_err());
        assert!(check_value(FieldKind::LongText, &none, "一行目\n二行目").is_ok());
        assert!(check_value(FieldKind::Text, &none, &"あ".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn phone_keys_ignore_punctuation_and_the_country_code() {
        assert_eq!(phone_key("03-1234-5678"), "0312345678");
        assert_eq!(phone_key("(03) 1234 5678"), "0312345678");
        assert_eq!(phone_key("+81 3 1234 5678"), "0312345678");
    }
}
