//! Tables printed as Markdown, so `BENCHMARKS.md` holds them as printed.

/// One part's table.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = format!("### {}\n\n", self.title);
        out += &line(&self.header);
        out += &line(&vec!["---".to_owned(); self.header.len()]);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// A ratio as the tables print it.
pub fn ratio(value: f64) -> String {
    format!("**{value:.2}×**")
}
