//! Route templates: `{name:regex}` normalised to `{name}`.

/// Strips the regex part of every `{name:regex}` segment, leaving the template as users write
/// it in their docs. Allocates only when there is something to strip.
pub fn normalize(pattern: String) -> String {
    if !pattern.contains(':') {
        return pattern;
    }
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut skipping = false;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if !skipping {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    skipping = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 && !skipping => skipping = true,
            _ if !skipping => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn strips_regexes() {
        let n = |s: &str| normalize(s.to_owned());
        assert_eq!(n("/items/{id}"), "/items/{id}");
        assert_eq!(n(r"/items/{id:\d+}"), "/items/{id}");
        assert_eq!(n(r"/a/{x:\d{2,4}}/b/{y:[a-z]+}"), "/a/{x}/b/{y}");
        assert_eq!(n("/files/{tail:.*}"), "/files/{tail}");
        assert_eq!(n("/files/{tail}*"), "/files/{tail}*");
        assert_eq!(n("/time/10:30"), "/time/10:30");
    }
}
