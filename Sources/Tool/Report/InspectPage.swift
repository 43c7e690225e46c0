import Foundation

/// A picture on a page: a PNG file (relative to the page) drawn at its own size, described by `alt`.
struct PageTile {
    var file: String
    var width: Int, height: Int
    var alt: String

    var html: String { "<img src=\"\(escape(file))\" width=\"\(width)\" height=\"\(height)\" alt=\"\(escape(alt))\">" }
}

/// The page `deconvnet inspect` writes: sections of pictures (PNG files beside the page or in its
/// `tiles/` folder, linked by relative paths) and a table of class probabilities, in the report's
/// style sheet. The pictures are bare tiles: every title, caption, header and colour-bar label is
/// text on the page (colour bars are inline SVG). Opens from disk with no network: no external fonts,
/// scripts or images.
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

    /// One picture with a caption under it.
    static func figure(_ tile: PageTile, caption: String) -> String {
        "<figure>\(tile.html)<figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    /// Pictures side by side, each labelled under it, over one caption for the group, then `key`
    /// (HTML, e.g. a colour bar's inline SVG).
    static func panels(_ tiles: [(tile: PageTile, label: String)], caption: String, key: String = "") -> String {
        "<figure><div class=\"panels\">" + tiles.map { "<div class=\"panel\">\($0.tile.html)<div class=\"label\">\(escape($0.label))</div></div>" }.joined()
            + "</div>\(key)<figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    /// A table of pictures: `columns` headers across the top (after `corner`), one header per row.
    static func tileTable(corner: String, columns: [String], rows: [(header: String, tiles: [PageTile])], caption: String, key: String = "") -> String {
        var out = "<figure><table class=\"tiles\"><thead><tr><th>\(escape(corner))</th>" + columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows {
            out += "<tr><th>\(escape(row.header))</th>" + row.tiles.map { "<td>\($0.html)</td>" }.joined() + "</tr>"
        }
        return out + "</tbody></table>\(key)<figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    /// A canvas (a colour bar) as inline SVG: its text stays text on the page.
    static func inline(_ canvas: Canvas) throws -> String { "<div class=\"key\">" + (try canvas.svg(standalone: false)) + "</div>" }

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
    .panels { display: flex; flex-wrap: wrap; gap: 10px 12px; align-items: flex-start; }
    .panel { display: flex; flex-direction: column; align-items: center; max-width: 100%; }
    .panel .label { color: #333; font-size: 12px; max-width: 180px; text-align: center; overflow-wrap: anywhere; }
    table.tiles { border-collapse: separate; border-spacing: 4px; } table.tiles td, table.tiles th { border: none; padding: 0; background: none; }
    table.tiles thead th { font-weight: 600; font-size: 12px; text-align: center; white-space: normal; } table.tiles tbody th { text-align: right; padding-right: 6px; }
    .key { margin: 6px 0 2px; } .key svg { display: block; }
    .bar { display: inline-block; height: 11px; background: #1f77b4; border-radius: 2px; vertical-align: middle; }
    table.probabilities td:last-child { width: 250px; }
    """
}
