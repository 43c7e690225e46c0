import Foundation

/// The page `deconvnet inspect` writes: sections of pictures (PNG files beside the page, linked by
/// relative paths) and a table of class probabilities, in the report's style sheet. Opens from disk
/// with no network: no external fonts, scripts or images.
struct InspectPage {
    var title: String
    private(set) var body = ""

    init(title: String, lead: String) {
        self.title = title
        body = "<h1>\(escape(title))</h1>\n<p class=\"meta\">\(escape(lead))</p>\n"
    }

    /// Appends a section: an `<h2>` heading over `content` (HTML).
    mutating func section(_ heading: String, _ content: String) {
        body += "<section><h2>\(escape(heading))</h2>\n\(content)</section>\n"
    }

    var html: String { ReportPage.document(title: title, body: body, css: Self.css) }

    /// A picture `file` (relative to the page) drawn at its own size, with a one-line caption under it.
    static func figure(_ file: String, width: Int, height: Int, caption: String) -> String {
        "<figure><img src=\"\(escape(file))\" width=\"\(width)\" height=\"\(height)\" alt=\"\(escape(caption))\">"
            + "<figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    /// A paragraph of explanation.
    static func note(_ text: String) -> String { "<p class=\"note\">\(escape(text))</p>\n" }

    /// The `count` most probable classes (named by `name`), most probable first, each with a bar as long as its
    /// probability; the predicted and the true class marked.
    static func probabilityTable(_ probabilities: [Float], name: (Int) -> String, count: Int, label: Int?) -> String {
        let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(count)
        var out = "<table class=\"probabilities\"><thead><tr><th class=\"num\">rank</th><th class=\"text\">class</th>"
            + "<th class=\"num\">probability</th><th class=\"text\"></th></tr></thead><tbody>\n"
        for (rank, c) in ranked.enumerated() {
            let mark = (rank == 0 ? " <small>(predicted)</small>" : "") + (c == label ? " <small>(true class)</small>" : "")
            let p = probabilities[c]
            out += "<tr\(rank == 0 ? " class=\"best\"" : "")><td class=\"num\">\(rank + 1)</td><td class=\"text\">\(escape(name(c)))\(mark)</td>"
            out += String(format: "<td class=\"num\">%.4f</td>", p)
            out += String(format: "<td class=\"text\"><span class=\"bar\" style=\"width:%.1fpx\"></span></td></tr>\n", Double(max(p, 0)) * 240)
        }
        return out + "</tbody></table>\n"
    }

    static let css = """

    figure img { image-rendering: pixelated; border: 1px solid #ddd; max-width: 100%; height: auto; }
    .bar { display: inline-block; height: 11px; background: #1f77b4; border-radius: 2px; vertical-align: middle; }
    table.probabilities td:last-child { width: 250px; }
    """
}
