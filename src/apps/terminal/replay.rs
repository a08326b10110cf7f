//! What a tab that attaches (or falls behind) is sent first: the session's scrollback and screen
//! as escape sequences that redraw them in a fresh terminal of the same size.
//!
//! avt's `dump` restores the visible screens (primary and alternate), cursor, modes and pen, but
//! not the scrollback. So the scrollback lines go first, each with its colours, and are then
//! scrolled out of view (line feeds at the bottom row push them into the terminal's own
//! scrollback); the dump then draws the screen over the blank rows.

use std::fmt::Write;

use axum::body::Bytes;

pub fn snapshot(vt: &avt::Terminal, scrollback: usize) -> Bytes {
    let (_, rows) = vt.size();
    let screen = vt.primary_screen();
    let all: Vec<&avt::Line> = screen.all_lines().collect();
    let back = all.len().saturating_sub(rows).min(scrollback);
    let history = &all[all.len() - rows.min(all.len()) - back..all.len() - rows.min(all.len())];
    let mut out = String::from("\x1b[0m\x1b[H\x1b[2J");
    for line in history {
        render(line, &mut out);
        if !line.is_wrapped() {
            out.push_str("\x1b[0m\r\n");
        }
    }
    if !history.is_empty() {
        // From the bottom row, each line feed moves one line into the terminal's scrollback.
        let _ = write!(out, "\x1b[0m\x1b[{rows};1H");
        for _ in 0..history.len().min(rows.saturating_sub(1)) {
            out.push('\n');
        }
        out.push_str("\x1b[H");
    }
    out.push_str(&semicolon_sgr(&vt.dump()));
    Bytes::from(out)
}

/// avt writes truecolour as `38:2:R:G:B`; xterm.js reads the colon form as
/// `38:2:<colour space>:R:G`. Inside SGR sequences, colons become semicolons.
fn semicolon_sgr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        let end = rest.find(|c: char| c.is_ascii_alphabetic() || c == '@' || c == '~').unwrap_or(rest.len());
        let params = &rest[..end];
        if rest[end..].starts_with('m') {
            out.push_str(&params.replace(':', ";"));
        } else {
            out.push_str(params);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// One line's text with the SGR sequences of its cells, trailing default blanks left out.
fn render(line: &avt::Line, out: &mut String) {
    let cells: Vec<&avt::Cell> = line.cells().iter().filter(|c| c.width() > 0).collect();
    let used = cells.iter().rposition(|c| c.char() != ' ' || !c.pen().is_default()).map_or(0, |i| i + 1);
    let mut pen: Option<avt::Pen> = None;
    for c in &cells[..used] {
        if pen.as_ref() != Some(c.pen()) {
            out.push_str(&sgr(c.pen()));
            pen = Some(*c.pen());
        }
        out.push(c.char());
    }
}

fn sgr(p: &avt::Pen) -> String {
    let mut codes = vec!["0".to_string()];
    for (on, code) in [
        (p.is_bold(), "1"),
        (p.is_faint(), "2"),
        (p.is_italic(), "3"),
        (p.is_underline(), "4"),
        (p.is_blink(), "5"),
        (p.is_inverse(), "7"),
        (p.is_strikethrough(), "9"),
    ] {
        if on {
            codes.push(code.into());
        }
    }
    let color = |c: avt::Color, base: u8, bright: u8, ext: u8| match c {
        avt::Color::Indexed(n) if n < 8 => format!("{}", base + n),
        avt::Color::Indexed(n) if n < 16 => format!("{}", bright + n - 8),
        avt::Color::Indexed(n) => format!("{ext};5;{n}"),
        avt::Color::RGB(rgb) => format!("{ext};2;{};{};{}", rgb.r, rgb.g, rgb.b),
    };
    if let Some(fg) = p.foreground() {
        codes.push(color(fg, 30, 90, 38));
    }
    if let Some(bg) = p.background() {
        codes.push(color(bg, 40, 100, 48));
    }
    format!("\x1b[{}m", codes.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a fresh terminal, replays its snapshot into another, and compares.
    fn round_trip(input: &str, cols: usize, rows: usize) -> (Vec<String>, Vec<String>) {
        let mut a = avt::Terminal::with_scrollback(cols, rows, Some(1000)).unwrap();
        a.feed(input);
        let snap = snapshot(&a, 1000);
        let mut b = avt::Terminal::with_scrollback(cols, rows, Some(1000)).unwrap();
        b.feed(std::str::from_utf8(&snap).unwrap());
        (a.primary_screen().text(), b.primary_screen().text())
    }

    #[test]
    fn screen_and_scrollback_come_back() {
        let input: String = (1..=30).map(|i| format!("\x1b[3{}mline {i}\x1b[0m\r\n", i % 8)).collect();
        let (a, b) = round_trip(&(input + "$ echo hi"), 40, 10);
        assert_eq!(a, b);
        assert!(b.iter().any(|l| l == "line 1"), "the oldest scrollback line: {b:?}");
        assert_eq!(b.last().map(String::as_str), Some("$ echo hi"));
    }

    #[test]
    fn a_short_history_and_the_cursor() {
        let mut a = avt::Terminal::with_scrollback(20, 5, Some(100)).unwrap();
        a.feed("one\r\ntwo\r\nthree");
        let snap = snapshot(&a, 100);
        let mut b = avt::Terminal::with_scrollback(20, 5, Some(100)).unwrap();
        b.feed(std::str::from_utf8(&snap).unwrap());
        assert_eq!(a.primary_screen().text(), b.primary_screen().text());
        assert_eq!(a.cursor_position(), b.cursor_position());
    }

    #[test]
    fn truecolour_uses_semicolons() {
        assert_eq!(semicolon_sgr("a\x1b[38:2:1:2:3mb\x1b[2:3Hc"), "a\x1b[38;2;1;2;3mb\x1b[2:3Hc");
    }

    #[test]
    fn colours_survive() {
        let mut s = String::new();
        let mut vt = avt::Terminal::with_scrollback(20, 3, Some(10)).unwrap();
        vt.feed("\x1b[1;38;2;10;20;30mrgb\x1b[0m \x1b[91mbright\r\n\r\n\r\n\r\n");
        render(vt.primary_screen().all_lines().next().unwrap(), &mut s);
        assert_eq!(s, "\x1b[0;1;38;2;10;20;30mrgb\x1b[0m \x1b[0;91mbright");
    }
}
