//! How names are compared where case does not matter (userName, a group's displayName):
//! Unicode NFC, then full case folding (Unicode's CaseFolding.txt, C and F), then NFC
//! again, as identity systems compare identifiers. `STRASSE` and `straße`, `ΟΔΟΣ` and
//! `οδος`, a composed `é` and `e` + U+0301 all fold to one form.

use unicode_normalization::UnicodeNormalization;

pub fn fold(s: &str) -> String {
    // Plain ASCII folds to its lowercase: skip the tables for the common case.
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let nfc: String = s.nfc().collect();
    caseless::default_case_fold_str(&nfc).nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn names_that_identity_systems_treat_as_one_fold_to_one_form() {
        assert_eq!(fold("STRASSE"), fold("straße"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδοσ"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("caf\u{e9}"), fold("cafe\u{301}"));
        assert_eq!(fold("Barbara@Example.COM"), "barbara@example.com");
        assert_ne!(fold("a"), fold("b"));
    }
}
