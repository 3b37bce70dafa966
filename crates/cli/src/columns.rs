//! Text tables for the terminal, as `strata demo` and `strata bench` end: a header, a rule,
//! and rows, each column as wide as its widest cell.

/// The table of `header` and `rows`, one line each, columns two spaces apart, with no
/// trailing spaces.
pub fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |fields: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = fields
            .zip(&widths)
            .map(|(f, w)| format!("{f:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&mut header.into_iter());
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&mut rules.iter().map(String::as_str)));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [
            ["a".to_owned(), "héllo".to_owned()],
            ["longer".to_owned(), "".to_owned()],
        ];
        assert_eq!(
            render(["x", "y"], &rows),
            "x       y\n------  -----\na       héllo\nlonger\n"
        );
    }
}
